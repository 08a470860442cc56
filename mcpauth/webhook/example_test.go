package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/mcpauth/webhook"
)

// Send key notifications to an endpoint that verifies their signature.
func Example() {
	hookSecret := []byte("a-32-byte-secret-from-your-vault")

	// The receiving side: verify, then decode the exact bytes verified.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(hookSecret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		fmt.Printf("%s for %s: key %s (%q), delivery id matches header: %v\n",
			p.Type, p.UserID, p.KeyID, p.KeyName, p.ID == r.Header.Get(webhook.HeaderDelivery))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	// The sending side: hand the Notifier to the key Manager
	// (keyadmin.Options.Notifier), or call it directly.
	n, err := webhook.New(receiver.URL+"/hooks/mcpauth", hookSecret, &webhook.Options{Timeout: 2 * time.Second})
	if err != nil {
		panic(err)
	}
	err = n.Notify(context.Background(), notify.Notification{
		Type: notify.KeyCreated, At: time.Now(), UserID: "user-42", KeyID: "AbCdEfGhIjKl", KeyName: "laptop",
	})
	fmt.Println("delivered:", err == nil)

	// A forged request fails verification.
	forged := http.Header{}
	forged.Set(webhook.HeaderTimestamp, fmt.Sprint(time.Now().Unix()))
	forged.Set(webhook.HeaderSignature, "v1=00")
	fmt.Println(webhook.Verify(hookSecret, forged, []byte(`{"type":"key.revoked"}`), time.Now(), 0))
	// Output:
	// key.created for user-42: key AbCdEfGhIjKl ("laptop"), delivery id matches header: true
	// delivered: true
	// mcpauth/webhook: signature does not match
}
