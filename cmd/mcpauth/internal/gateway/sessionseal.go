package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// sessionSeal binds an upstream's MCP session IDs to the user who opened
// the session: the client sees "<upstream id>.<mac>", where mac is an
// HMAC-SHA256 of the user ID and the upstream ID under a key random per
// gateway process. A request carrying a session ID sealed for another user
// (a leaked or guessed ID) is refused before it reaches the upstream.
// Sessions therefore do not survive a gateway restart (clients open a new
// one, as the protocol says they must on 404). Safe for concurrent use.
type sessionSeal struct{ key [32]byte }

func newSessionSeal() *sessionSeal {
	s := &sessionSeal{}
	_, _ = rand.Read(s.key[:])
	return s
}

func (s *sessionSeal) mac(userID, upstreamID string) string {
	h := hmac.New(sha256.New, s.key[:])
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(upstreamID))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// seal is the session ID the client sees.
func (s *sessionSeal) seal(userID, upstreamID string) string {
	return upstreamID + "." + s.mac(userID, upstreamID)
}

// open returns the upstream session ID of a sealed one, if it was sealed
// for userID.
func (s *sessionSeal) open(userID, sealed string) (string, bool) {
	i := strings.LastIndexByte(sealed, '.')
	if i <= 0 {
		return "", false
	}
	id, mac := sealed[:i], sealed[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.mac(userID, id))) {
		return "", false
	}
	return id, true
}
