package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth"
)

// stdioUpstream serves a stdio MCP server over streamable HTTP. Each MCP
// session (opened by an initialize POST) gets its own process, owned by the
// user who opened it: a request of another user naming the session is
// answered 404 and reaches no process. A stdio server is written for one
// client, so a process is never shared by two sessions, let alone two
// users.
//
// Limits: at most MaxProcesses sessions at once, MaxProcessesPerUser per
// user (a user at their cap gets the slot of their least recently used
// idle session; otherwise initialize gets 503 with Retry-After); a session
// without a request for IdleTimeout is ended and its process stopped. A
// process that exits is reported to the requests waiting on it (a JSON-RPC
// error naming the exit) and started again on the session's next request,
// which replays the client's initialize first. The process's stderr goes to
// the log, line by line.
//
// Messages the process sends that answer nothing (notifications, its own
// requests such as sampling) go to the POST event stream whose request
// carries their progress token, else to the oldest POST event stream still
// open, else to the session's GET stream, else wait (at most 256) for one.
type stdioUpstream struct {
	cfg     StdioConfig
	env     []string
	streams *streamSet
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	sessions map[string]*stdioSession
	perUser  map[string]int
	closed   bool

	stop    chan struct{}
	stopped chan struct{}
	ending  sync.WaitGroup // evicted sessions whose processes are stopping
}

func newStdioUpstream(cfg StdioConfig, getenv func(string) string, streams *streamSet, log *slog.Logger, now func() time.Time) (*stdioUpstream, error) {
	u := &stdioUpstream{
		cfg: cfg, streams: streams, log: log, now: now,
		sessions: make(map[string]*stdioSession), perUser: make(map[string]int),
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	u.env = childEnv(cfg, getenv)
	go u.sweeper()
	return u, nil
}

// childEnv is the process environment: the InheritEnv variables that are
// set, then Env.
func childEnv(cfg StdioConfig, getenv func(string) string) []string {
	var env []string
	for _, name := range cfg.InheritEnv {
		if v := getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+cfg.Env[k])
	}
	return env
}

// sweeper ends idle sessions.
func (u *stdioUpstream) sweeper() {
	defer close(u.stopped)
	every := min(max(u.cfg.IdleTimeout.D()/4, 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
			u.sweep(u.now())
		}
	}
}

// sweep ends the sessions idle at now: no request in flight and none
// started for IdleTimeout. It returns how many it ended.
func (u *stdioUpstream) sweep(now time.Time) int {
	var idle []*stdioSession
	u.mu.Lock()
	for _, s := range u.sessions {
		if s.idleSince(now) >= u.cfg.IdleTimeout.D() {
			idle = append(idle, s)
		}
	}
	u.mu.Unlock()
	for _, s := range idle {
		u.log.Info("stdio session idle: stopping its process", slog.String("user_id", s.userID), slog.Int("pid", s.pid()))
		u.endSession(s)
	}
	return len(idle)
}

func (u *stdioUpstream) ready(context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return errors.New("closed")
	}
	return nil
}

// Close ends every session and stops every process (stdin closed, then
// SIGTERM, then SIGKILL, StopTimeout apart), waiting for them within ctx.
func (u *stdioUpstream) Close(ctx context.Context) error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	all := make([]*stdioSession, 0, len(u.sessions))
	for _, s := range u.sessions {
		all = append(all, s)
	}
	u.mu.Unlock()
	close(u.stop)
	<-u.stopped
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); u.ending.Wait() }()
	for _, s := range all {
		wg.Add(1)
		go func() { defer wg.Done(); u.endSession(s) }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("gateway: stdio processes did not all stop in time")
	}
}

// endSession removes s and stops its process.
func (u *stdioUpstream) endSession(s *stdioSession) {
	u.mu.Lock()
	u.forget(s)
	u.mu.Unlock()
	s.end()
}

// forget removes s from the sessions, freeing its slot. Called with u.mu
// held.
func (u *stdioUpstream) forget(s *stdioSession) {
	if u.sessions[s.id] == s {
		delete(u.sessions, s.id)
		if u.perUser[s.userID]--; u.perUser[s.userID] <= 0 {
			delete(u.perUser, s.userID)
		}
	}
}

// session finds the caller's session. Another user's session is not found.
func (u *stdioUpstream) session(id, userID string) *stdioSession {
	u.mu.Lock()
	defer u.mu.Unlock()
	if s := u.sessions[id]; s != nil && s.userID == userID {
		return s
	}
	return nil
}

var errAtCapacity = errors.New("too many stdio processes")

// newSession reserves a slot for userID and makes a session (its process
// starts on its first message). A user at MaxProcessesPerUser gets the slot
// of their own least recently used session with no request in flight,
// which is ended (clients often leave sessions without DELETE); with none
// idle, or with the gateway at MaxProcesses, it fails: another user's
// session is never ended for it.
func (u *stdioUpstream) newSession(userID, keyID string) (*stdioSession, error) {
	for {
		u.mu.Lock()
		if u.closed {
			u.mu.Unlock()
			return nil, errShuttingDown
		}
		var evict *stdioSession
		if u.perUser[userID] >= u.cfg.MaxProcessesPerUser {
			evict = u.oldestIdle(userID)
			if evict == nil {
				u.mu.Unlock()
				return nil, errAtCapacity
			}
		} else if len(u.sessions) >= u.cfg.MaxProcesses {
			u.mu.Unlock()
			return nil, errAtCapacity
		}
		if evict != nil {
			u.log.Info("stdio sessions per user at the cap: ending the user's least recently used one", slog.String("user_id", userID), slog.Int("pid", evict.pid()))
			u.forget(evict)
			u.mu.Unlock()
			u.ending.Add(1)
			go func() { defer u.ending.Done(); evict.end() }() // stops within 2 x StopTimeout
			continue
		}
		var b [16]byte
		_, _ = rand.Read(b[:])
		s := newStdioSession(u, hex.EncodeToString(b[:]), userID, keyID)
		u.sessions[s.id] = s
		u.perUser[userID]++
		u.mu.Unlock()
		return s, nil
	}
}

// oldestIdle is userID's least recently used session with no request in
// flight. Called with u.mu held.
func (u *stdioUpstream) oldestIdle(userID string) *stdioSession {
	var best *stdioSession
	var bestUsed time.Time
	for _, s := range u.sessions {
		if s.userID != userID {
			continue
		}
		s.mu.Lock()
		idle, used := s.inflight == 0, s.lastUsed
		s.mu.Unlock()
		if idle && (best == nil || used.Before(bestUsed)) {
			best, bestUsed = s, used
		}
	}
	return best
}

var errShuttingDown = errors.New("shutting down")

const maxStdioBody = 4 << 20

func (u *stdioUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := mcpauth.PrincipalFrom(r.Context())
	if !ok {
		writeRPCError(w, http.StatusUnauthorized, "", codeInvalidRequest, "mcpauth gateway: not authenticated")
		return
	}
	sid := r.Header.Get(sessionHeader)
	switch r.Method {
	case http.MethodPost:
		u.servePOST(w, r, p, sid)
	case http.MethodGet, http.MethodDelete:
		if !accepts(r, "text/event-stream") && r.Method == http.MethodGet {
			writeRPCError(w, http.StatusNotAcceptable, "", codeInvalidRequest, "mcpauth gateway: GET needs Accept: text/event-stream")
			return
		}
		if sid == "" {
			writeRPCError(w, http.StatusBadRequest, "", codeInvalidRequest, "mcpauth gateway: Mcp-Session-Id header required")
			return
		}
		s := u.session(sid, p.UserID)
		if s == nil {
			writeRPCError(w, http.StatusNotFound, "", codeInvalidRequest, "mcpauth gateway: session not found")
			return
		}
		if r.Method == http.MethodDelete {
			u.endSession(s)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		ctx, done := u.streams.add(r.Context())
		defer done()
		s.serveGET(ctx, w)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeRPCError(w, http.StatusMethodNotAllowed, "", codeInvalidRequest, "mcpauth gateway: method not allowed")
	}
}

func (u *stdioUpstream) servePOST(w http.ResponseWriter, r *http.Request, p mcpauth.Principal, sid string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxStdioBody))
	if err != nil {
		writeRPCError(w, http.StatusRequestEntityTooLarge, "", codeInvalidRequest, "mcpauth gateway: body too large")
		return
	}
	msgs, err := parseMessages(body)
	if err != nil {
		writeRPCError(w, http.StatusBadRequest, "", codeParseError, "mcpauth gateway: body is not JSON-RPC")
		return
	}
	var s *stdioSession
	if sid == "" {
		if len(msgs) != 1 || msgs[0].kind != kindRequest || msgs[0].method != "initialize" {
			writeRPCError(w, http.StatusBadRequest, "", codeInvalidRequest, "mcpauth gateway: Mcp-Session-Id header required (only initialize opens a session)")
			return
		}
		s, err = u.newSession(p.UserID, p.KeyID)
		if err != nil {
			w.Header().Set("Retry-After", "30")
			writeRPCError(w, http.StatusServiceUnavailable, msgs[0].id, codeInternalError, "mcpauth gateway: "+err.Error()+"; try again later")
			return
		}
		w.Header().Set(sessionHeader, s.id)
		if !s.servePOST(w, r, msgs, true) {
			u.endSession(s) // the process did not start: free the slot
		}
		return
	}
	if s = u.session(sid, p.UserID); s == nil {
		writeRPCError(w, http.StatusNotFound, "", codeInvalidRequest, "mcpauth gateway: session not found")
		return
	}
	s.servePOST(w, r, msgs, false)
}
