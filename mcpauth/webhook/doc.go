// Package webhook delivers mcpauth key notifications (created, rotated,
// revoked, expiring soon, used from a new IP) to an HTTP endpoint as signed
// JSON, so that a host can send the "a new key was created on your account"
// email from any stack.
//
//	n, err := webhook.New("https://example.com/hooks/mcpauth", secret, nil)
//	...
//	guard, err := mcpauth.New(keys, &mcpauth.Options{Notifier: n, ...})         // key.new_ip
//	admin, err := keyadmin.New(keys, &keyadmin.Options{Notifier: n, ...})      // the rest
//
// # Requests
//
// Every notification is one POST with Content-Type application/json and the
// body of a [Payload]: the [notify.Notification] fields plus "id", the
// delivery ID. Three headers go with it:
//
//	Mcpauth-Delivery:  3f1c0a9e5b7d4e2f8a6c1b0d9e8f7a6b   (same as the body's "id")
//	Mcpauth-Timestamp: 1767225600                          (Unix seconds, when signed)
//	Mcpauth-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The delivery ID is the same on every attempt of one notification, so a
// receiver that remembers the IDs it processed handles each notification
// once even when a retry arrives after a response that was lost. The
// timestamp and signature are computed again for every attempt.
//
// # Verifying on the receiving side
//
// [Verify] checks the signature in constant time and rejects a timestamp
// outside the tolerance (default 5 minutes either way), which bounds how long
// a captured request can be replayed; remembering delivery IDs for that long
// closes the window entirely. Read the body once, verify it, then decode it:
//
//	func hook(w http.ResponseWriter, r *http.Request) {
//		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
//		if err != nil {
//			http.Error(w, "bad body", http.StatusBadRequest)
//			return
//		}
//		if err := webhook.Verify(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
//			http.Error(w, "bad signature", http.StatusUnauthorized)
//			return
//		}
//		var p webhook.Payload
//		if err := json.Unmarshal(body, &p); err != nil {
//			http.Error(w, "bad json", http.StatusBadRequest)
//			return
//		}
//		if alreadyProcessed(p.ID) { // your own store of delivery IDs
//			w.WriteHeader(http.StatusOK)
//			return
//		}
//		sendEmail(p.UserID, p.Type, p.KeyName)
//		w.WriteHeader(http.StatusNoContent)
//	}
//
// Receivers in other languages do the same: HMAC-SHA256 with the shared
// secret over the bytes of the Mcpauth-Timestamp header, a ".", and the raw
// body; hex-encode it; compare with each "v1=" value of Mcpauth-Signature in
// constant time; check that the timestamp is recent. Verify before parsing
// the JSON, and parse the exact bytes that were verified.
//
// # Retries and timeouts
//
// Each attempt has its own timeout (Options.Timeout, default 5s). A network
// error, a timeout, a 5xx or a 429 is retried, up to Options.MaxAttempts
// attempts in all (default 3), waiting Options.InitialBackoff (default 1s)
// and doubling up to Options.MaxBackoff (default 30s). A Retry-After header
// on a retried response (seconds or an HTTP date) is honoured when it asks for a
// longer wait, up to Options.MaxRetryAfter (default 60s). Any other status
// (3xx, 4xx other than 429) fails at once: redirects are not followed, since
// they would turn the POST into a GET or send the signed body elsewhere.
// A cancelled context stops the delivery, also while waiting between attempts.
//
// Notify returns only when the notification is delivered or given up. The
// Guard and keyadmin.Manager call it on a background goroutine of their
// own, one notification at a time, so an endpoint that is down never holds
// a request or a Create; it delays the notifications queued behind it
// (about 18s each with the defaults, up to the 2-minute limit of one Notify
// call with long Retry-After headers), and past 1024 waiting, new ones are
// dropped and logged. Use a short Timeout and few attempts where that
// matters.
//
// # Secrets
//
// The secret must be at least 16 bytes (32 random bytes recommended). It
// never appears in errors, logs or the output of fmt; errors name the
// endpoint by scheme and host only, since webhook URLs often carry tokens in
// their path or query.
//
// To rotate the secret without rejected requests, list the new one in
// Options.AdditionalSecrets: every request then carries one signature per
// secret ("v1=<old>,v1=<new>") and Verify accepts any of them. Move
// receivers to the new secret, then make it the main one and drop the old.
//
// # Concurrency
//
// A Notifier is safe for concurrent use and starts no goroutine.
package webhook
