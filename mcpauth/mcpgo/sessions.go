package mcpgo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/mcpauth"
)

// MinSessionKeyBytes is the shortest SessionOptions.Key accepted.
const MinSessionKeyBytes = 32

// sessionHeader is the streamable HTTP session header.
const sessionHeader = "Mcp-Session-Id"

// macLen is the number of HMAC bytes in a bound session ID (128 bits).
const macLen = 16

// ErrSessionUser: a session ID was presented with the key of a user it was
// not issued to, or was not issued by Sessions at all.
var ErrSessionUser = fmt.Errorf("mcpauth/mcpgo: %w", mcpauth.ErrSessionUserMismatch)

// SessionOptions configures Sessions. A nil *SessionOptions uses every
// default.
type SessionOptions struct {
	// Key is the HMAC-SHA256 key that binds session IDs to users, at least
	// MinSessionKeyBytes long. Every instance serving the same sessions
	// needs the same key (keep it secret: with it, anyone can mint a
	// session ID for any user). Default: 32 random bytes per Sessions, so
	// IDs do not survive a restart or move between instances.
	Key []byte
	// Manager issues, validates and terminates the underlying session IDs.
	// Default: mcp-go's default, &server.StatelessGeneratingSessionIdManager{}
	// (IDs checked for format only; serves several instances). Use
	// &server.InsecureStatefulSessionIdManager{} to also check that the
	// session exists; &server.StatelessSessionIdManager{} issues no IDs.
	Manager server.SessionIdManager
}

// Sessions binds mcp-go streamable HTTP sessions to mcpauth users.
// NewHandler wires it; if you build the StreamableHTTPServer yourself, use
// it both as the server's SessionIdManagerResolver
// (server.WithSessionIdManagerResolver) and around the server (Require):
// the resolver alone leaves GET streams open to any user's key (mcp-go does
// not validate a GET's session ID), and Require alone refuses every session
// (mcp-go then issues IDs that Sessions did not). It is safe for concurrent
// use.
type Sessions struct {
	key   []byte
	inner server.SessionIdManager
}

var _ server.SessionIdManagerResolver = (*Sessions)(nil)

// NewSessions returns a Sessions. opts may be nil.
func NewSessions(opts *SessionOptions) (*Sessions, error) {
	var o SessionOptions
	if opts != nil {
		o = *opts
	}
	s := &Sessions{inner: o.Manager}
	if s.inner == nil {
		s.inner = &server.StatelessGeneratingSessionIdManager{}
	}
	switch {
	case o.Key == nil:
		s.key = make([]byte, MinSessionKeyBytes)
		if _, err := rand.Read(s.key); err != nil {
			return nil, fmt.Errorf("mcpauth/mcpgo: generating a session key: %w", err)
		}
	case len(o.Key) < MinSessionKeyBytes:
		return nil, fmt.Errorf("mcpauth/mcpgo: SessionOptions.Key is %d bytes, want at least %d", len(o.Key), MinSessionKeyBytes)
	default:
		s.key = append([]byte(nil), o.Key...)
	}
	return s, nil
}

// mac binds a base session ID to a user.
func (s *Sessions) mac(base, userID string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("mcpauth/mcpgo session\x00"))
	m.Write([]byte(base))
	m.Write([]byte{0})
	m.Write([]byte(userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:macLen])
}

// check verifies that id was issued by s to userID and returns its base ID.
func (s *Sessions) check(id, userID string) (string, error) {
	base, tag, ok := strings.Cut(id, ".")
	if !ok || base == "" || strings.Contains(tag, ".") {
		return "", ErrSessionUser
	}
	if !hmac.Equal([]byte(tag), []byte(s.mac(base, userID))) {
		return "", ErrSessionUser
	}
	return base, nil
}

// base returns the base ID of a bound id without checking its user (for
// mcp-go's own housekeeping, which has no request).
func base(id string) string {
	b, _, _ := strings.Cut(id, ".")
	return b
}

// ResolveSessionIdManager implements server.SessionIdManagerResolver: the
// returned manager issues IDs bound to the request's user and validates and
// terminates only IDs bound to it. For a nil request (mcp-go's idle-session
// sweeper) it terminates any ID.
func (s *Sessions) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r == nil {
		return &boundManager{s: s, trusted: true}
	}
	p, ok := mcpauth.PrincipalFrom(r.Context())
	return &boundManager{s: s, user: p.UserID, known: ok}
}

// boundManager is the SessionIdManager for one request.
type boundManager struct {
	s       *Sessions
	user    string
	known   bool // the request has a principal
	trusted bool // no request: mcp-go housekeeping
}

func (m *boundManager) Generate() string {
	if !m.known {
		return "" // no principal: no session (Require refuses such requests anyway)
	}
	id := m.s.inner.Generate()
	if id == "" {
		return "" // stateless
	}
	return id + "." + m.s.mac(id, m.user)
}

func (m *boundManager) Validate(id string) (bool, error) {
	if m.trusted || id == "" { // no ID: the inner manager decides (stateless accepts)
		return m.s.inner.Validate(base(id))
	}
	if !m.known {
		return false, ErrSessionUser
	}
	b, err := m.s.check(id, m.user)
	if err != nil {
		return false, err
	}
	return m.s.inner.Validate(b)
}

func (m *boundManager) Terminate(id string) (bool, error) {
	if m.trusted || id == "" {
		return m.s.inner.Terminate(base(id))
	}
	if !m.known {
		return true, nil // not allowed
	}
	b, err := m.s.check(id, m.user)
	if err != nil {
		return true, nil // another user's session: not allowed to end it
	}
	return m.s.inner.Terminate(b)
}

// Require refuses, before mcp-go sees them, requests (POST, GET and DELETE)
// whose Mcp-Session-Id was not issued by s to the request's user: 403
// "session user mismatch". mcp-go itself does not validate the session ID
// of a GET, so this check is what keeps another user's key off a session's
// stream. A request without a principal gets 401. It must sit inside
// mcpauth's Require.
func (s *Sessions) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := mcpauth.PrincipalFrom(r.Context())
		if !ok {
			mcpauth.WriteError(w, r, mcpauth.ErrNoCredential)
			return
		}
		if id := r.Header.Get(sessionHeader); id != "" {
			if _, err := s.check(id, p.UserID); err != nil {
				mcpauth.WriteError(w, r, mcpauth.ErrSessionUserMismatch)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
