package keyadmin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// resettableStore is a memory store emptied between fuzz inputs, so that
// memory does not grow with the number of inputs. Fuzz workers run inputs
// one at a time.
type resettableStore struct{ m *store.Memory }

func (s *resettableStore) LookupKey(ctx context.Context, id string) (store.Key, error) {
	return s.m.LookupKey(ctx, id)
}
func (s *resettableStore) CreateKey(ctx context.Context, k store.Key) error {
	return s.m.CreateKey(ctx, k)
}
func (s *resettableStore) RevokeKey(ctx context.Context, id string, at time.Time) error {
	return s.m.RevokeKey(ctx, id, at)
}
func (s *resettableStore) ListKeys(ctx context.Context, userID string) ([]store.Key, error) {
	return s.m.ListKeys(ctx, userID)
}
func (s *resettableStore) SetExpiry(ctx context.Context, id string, at time.Time) error {
	return s.m.SetExpiry(ctx, id, at)
}

// lenientCreate is the create body as plain encoding/json reads it: field
// names folded, the last duplicate winning.
type lenientCreate struct {
	Name         string            `json:"name"`
	Scopes       []string          `json:"scopes"`
	RateLimit    int               `json:"rate_limit"`
	Metadata     map[string]string `json:"metadata"`
	AllowedCIDRs []string          `json:"allowed_cidrs"`
}

// FuzzKeysHandlerDecode feeds bodies to POST /keys and POST
// /keys/{id}/rotate. Properties: the handler never panics; a refused body
// writes nothing (no key created, the rotated key's record unchanged); an
// accepted create carries no field the host did not allow (rate_limit,
// metadata beyond "label") and stores exactly what a lenient decoder
// (encoding/json, case-folding, last duplicate wins) reads from the same
// body, so no decoder can see a different request.
func FuzzKeysHandlerDecode(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{} {}`, `{"name":`,
		`{"name":"laptop","scopes":["documents:read"],"expires_in_seconds":3600,"allowed_cidrs":["10.0.0.0/8"]}`,
		`{"metadata":{"label":"work"}}`,
		`{"metadata":{"tier":"paid"}}`,
		`{"rate_limit":1000000}`,
		`{"rate_limit":0}`,
		`{"Rate_Limit":5}`,
		`{"RATE_LIMIT":5}`,
		`{"metad\u0061ta":{"tier":"paid"}}`,
		`{"Metadata":{"tier":"paid"}}`,
		`{"scopes":["documents:read"],"Scopes":["admin"]}`,
		`{"scopes":["documents:read"],"scopes":["admin"]}`,
		`{"\u017fcopes":["admin"]}`,
		"{\"\u017fcopes\":[\"admin\"]}",
		`{"expires_in_\u017feconds":1}`,
		"{\"expires_in_\u017feconds\":1}",
		`{"\u212aey":"x","name":"\u212a"}`,
		"{\"na\u212ae\":\"x\"}",
		`{"metadata":{"label":"a","label":"b"}}`,
		`{"metadata":{"label":"a","Label":"b"}}`,
		`{"user_id":"bob"}`,
		`{"name":"x"}{"rate_limit":5}`,
		`{"metadata":{"label":[[[["x"]]]]}}`,
		`{"name":"\xff\xfe"}`,
		"{\"metadata\":{\"\xff\":\"a\",\"\xfe\":\"b\"}}",
		`{"grace_seconds":60}`,
		`{"grace_seconds":60,"Grace_Seconds":3153600000}`,
		`{"grace_seconds":3153600000}`,
		`{"grace_\u017feconds":1}`,
		`{"grace_seconds":-1}`,
		`{"grace_seconds":1e3}`,
		`{"scopes":"admin"}`,
		`{"scopes":["admin"]}`,
		`{"scopes":["documents:*"]}`,
		`{"expires_in_seconds":9223372036854775807}`,
	} {
		f.Add(seed)
	}

	keys := &resettableStore{m: store.NewMemory()}
	mgr, err := keyadmin.New(keys, &keyadmin.Options{
		Peppers: []apikey.Pepper{testPepper},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = mgr.Close(context.Background()) })
	h, err := mgr.Handler(testUser, &keyadmin.HandlerOptions{UserMetadataKeys: []string{"label"}})
	if err != nil {
		f.Fatal(err)
	}
	serve := func(method, path, body string) int {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", jsonCT)
		r.Header.Set("X-Test-User", "alice")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	list := func(t *testing.T) []store.Key {
		ks, err := keys.ListKeys(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}

	f.Fuzz(func(t *testing.T, body string) {
		keys.m = store.NewMemory()

		// Create.
		status := serve("POST", "/keys", body)
		got := list(t)
		if status != http.StatusCreated {
			if len(got) != 0 {
				t.Fatalf("status %d, but %d keys were written", status, len(got))
			}
		} else {
			if len(got) != 1 {
				t.Fatalf("201 with %d keys", len(got))
			}
			k := got[0]
			if k.RateLimit != 0 {
				t.Fatalf("accepted body set rate_limit %d", k.RateLimit)
			}
			for name := range k.Metadata {
				if name != "label" {
					t.Fatalf("accepted body set metadata %q", name)
				}
			}
			var lenient lenientCreate
			if err := json.Unmarshal([]byte(body), &lenient); err != nil {
				t.Fatalf("accepted a body encoding/json refuses: %v", err)
			}
			if lenient.RateLimit != 0 || lenient.Name != k.Name || !slices.Equal(lenient.Scopes, k.Scopes) ||
				!slices.Equal(lenient.AllowedCIDRs, k.AllowedCIDRs) || !maps.Equal(lenient.Metadata, k.Metadata) {
				t.Fatalf("encoding/json reads %+v, the key stored %+v", lenient, k)
			}
		}

		// Rotate a fresh key with the same body.
		old, err := mgr.Create(context.Background(), "alice", keyadmin.CreateOptions{Name: "rotate-me"})
		if err != nil {
			t.Fatal(err)
		}
		before := list(t)
		status = serve("POST", "/keys/"+old.Key.ID+"/rotate", body)
		after := list(t)
		if status != http.StatusCreated {
			if !slices.EqualFunc(before, after, keyEqual) {
				t.Fatalf("refused rotation (%d) changed the store", status)
			}
			return
		}
		if len(after) != len(before)+1 {
			t.Fatalf("rotation wrote %d keys", len(after)-len(before))
		}
		rotated, err := keys.LookupKey(context.Background(), old.Key.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rotated.RevokedAt.IsZero() && rotated.ExpiresAt.After(time.Now().Add(keyadmin.DefaultMaxRotationGrace)) {
			t.Fatalf("grace beyond the maximum: old key ends %s", rotated.ExpiresAt)
		}
	})
}

func keyEqual(a, b store.Key) bool {
	return a.ID == b.ID && a.ExpiresAt.Equal(b.ExpiresAt) && a.RevokedAt.Equal(b.RevokedAt) &&
		slices.Equal(a.Scopes, b.Scopes) && a.RateLimit == b.RateLimit && maps.Equal(a.Metadata, b.Metadata)
}
