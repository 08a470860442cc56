package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxQueued bounds the messages a session holds for a stream not yet open.
const maxQueued = 256

// stdioSession is one MCP session over one stdio process (see
// stdioUpstream). Its lock order: life, then mu.
type stdioSession struct {
	u                 *stdioUpstream
	id, userID, keyID string
	ended             chan struct{}

	life sync.Mutex // held while a process starts (and its initialize is replayed) and while writing

	mu       sync.Mutex
	proc     *process
	initReq  []byte // the client's initialize request, replayed into a restarted process
	initNote []byte // its notifications/initialized
	pending  map[string]*stream
	tokens   map[string]*stream // progress token → POST event stream
	calls    []*stream          // open POST event streams, oldest first
	get      *stream            // the standalone GET stream
	queue    [][]byte
	reinitID string
	reinit   chan message
	starts   int // processes started, the first one included
	inflight int
	lastUsed time.Time
	isEnded  bool
}

// stream is where one HTTP response (a POST's, or the GET stream) takes
// its messages from.
type stream struct {
	out  chan item
	gone chan struct{} // closed when its handler has returned
}

// item is one message for a stream; id is set on responses.
type item struct {
	raw []byte
	id  string
}

func newStream() *stream { return &stream{out: make(chan item, 16), gone: make(chan struct{})} }

func newStdioSession(u *stdioUpstream, id, userID, keyID string) *stdioSession {
	return &stdioSession{
		u: u, id: id, userID: userID, keyID: keyID, ended: make(chan struct{}),
		pending: make(map[string]*stream), tokens: make(map[string]*stream), lastUsed: u.now(),
	}
}

func (s *stdioSession) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid
}

func (s *stdioSession) idleSince(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight > 0 {
		return 0
	}
	return now.Sub(s.lastUsed)
}

// end closes the session and stops its process.
func (s *stdioSession) end() {
	s.mu.Lock()
	if s.isEnded {
		s.mu.Unlock()
		return
	}
	s.isEnded = true
	close(s.ended)
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.stop(s.u.cfg.StopTimeout.D())
	}
}

// deliver hands it to st, unless st's handler or the session has gone.
func (s *stdioSession) deliver(st *stream, it item) {
	select {
	case st.out <- it:
	case <-st.gone:
	case <-s.ended:
	}
}

// route sends a message from process p to the stream it belongs to.
func (s *stdioSession) route(p *process, m message) {
	s.mu.Lock()
	if m.kind == kindResponse {
		if s.reinitID != "" && m.id == s.reinitID {
			ch := s.reinit
			s.reinitID, s.reinit = "", nil
			s.mu.Unlock()
			ch <- m
			return
		}
		st := s.pending[m.id]
		delete(s.pending, m.id)
		s.mu.Unlock()
		if st == nil {
			p.log.Debug("stdio server answered a request no one waits for; dropped", slog.String("rpc_id", m.id))
			return
		}
		s.deliver(st, item{raw: m.raw, id: m.id})
		return
	}
	var st *stream
	if m.kind == kindNotification && m.token != "" {
		st = s.tokens[m.token]
	}
	if st == nil && len(s.calls) > 0 {
		st = s.calls[0]
	}
	if st == nil {
		st = s.get
	}
	if st == nil {
		if len(s.queue) >= maxQueued {
			s.queue = s.queue[1:]
			p.log.Warn("stdio session queue full: oldest unrouted message dropped", slog.String("user_id", s.userID))
		}
		s.queue = append(s.queue, m.raw)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.deliver(st, item{raw: m.raw})
}

// exited answers every request waiting on process p with an error naming
// how it ended; the session's next request starts a new process.
func (s *stdioSession) exited(p *process) {
	s.mu.Lock()
	if s.proc == p {
		s.proc = nil
	}
	ended := s.isEnded
	type failure struct {
		st *stream
		id string
	}
	var fails []failure
	for id, st := range s.pending {
		fails = append(fails, failure{st, id})
		delete(s.pending, id)
	}
	s.mu.Unlock()
	msg := "mcpauth gateway: the stdio MCP server exited (" + p.exitText() + ") before answering; it is started again on this session's next request"
	if ended {
		msg = "mcpauth gateway: the session ended before the stdio MCP server answered"
	} else {
		p.log.Warn("stdio server exited", slog.String("user_id", s.userID), slog.String("status", p.exitText()), slog.Int("waiting_requests", len(fails)))
	}
	for _, f := range fails {
		s.deliver(f.st, item{raw: errorResponse(f.id, codeInternalError, msg), id: f.id})
	}
}

var errSessionEnded = errors.New("session ended")

// running returns the session's process, starting it if there is none: a
// new session's first process gets the client's initialize as its first
// message; a restarted one gets that initialize replayed (with an ID of
// the gateway's, its answer consumed) and the initialized notification,
// within StartTimeout. Called with s.life held.
func (s *stdioSession) running(ctx context.Context) (*process, error) {
	s.mu.Lock()
	p, ended, replay := s.proc, s.isEnded, s.initReq
	s.mu.Unlock()
	if ended {
		return nil, errSessionEnded
	}
	if p != nil {
		return p, nil
	}
	p, err := startProcess(s.u.cfg, s.u.env, s.u.log.With(slog.String("user_id", s.userID)), s.route, s.exited)
	if err != nil {
		s.u.log.Error("stdio server did not start", slog.String("user_id", s.userID), slog.String("error", err.Error()))
		return nil, err
	}
	s.mu.Lock()
	if s.isEnded {
		s.mu.Unlock()
		p.stop(s.u.cfg.StopTimeout.D())
		return nil, errSessionEnded
	}
	s.proc = p
	s.starts++
	restart := s.starts > 1 && replay != nil
	n, note := s.starts-1, s.initNote
	s.mu.Unlock()
	if !restart {
		p.log.Info("stdio server started", slog.String("user_id", s.userID), slog.String("key_id", s.keyID))
		return p, nil
	}
	if err := s.replayInitialize(ctx, p, replay, note, n); err != nil {
		p.log.Error("restarted stdio server did not initialize: stopping it", slog.String("user_id", s.userID), slog.String("error", err.Error()))
		go p.stop(s.u.cfg.StopTimeout.D())
		return nil, err
	}
	p.log.Info("stdio server restarted", slog.String("user_id", s.userID), slog.Int("restarts", n))
	return p, nil
}

func (s *stdioSession) replayInitialize(ctx context.Context, p *process, req, note []byte, n int) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(req, &fields); err != nil {
		return err
	}
	id := strconv.Quote("mcpauth-gateway-reinit-" + strconv.Itoa(n))
	fields["id"] = json.RawMessage(id)
	raw, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	ch := make(chan message, 1)
	s.mu.Lock()
	s.reinitID, s.reinit = id, ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.reinit == ch {
			s.reinitID, s.reinit = "", nil
		}
		s.mu.Unlock()
	}()
	if err := p.write(raw); err != nil {
		return err
	}
	t := time.NewTimer(s.u.cfg.StartTimeout.D())
	defer t.Stop()
	select {
	case m := <-ch:
		var resp struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(m.raw, &resp) == nil && len(resp.Error) > 0 {
			return errors.New("initialize answered with an error")
		}
	case <-p.done:
		return errors.New(p.exitText())
	case <-t.C:
		return errors.New("no answer to initialize within stdio.start_timeout")
	case <-ctx.Done():
		return ctx.Err()
	}
	if note != nil {
		return p.write(note)
	}
	return nil
}

// send writes msgs to the session's process, starting it first if needed.
func (s *stdioSession) send(ctx context.Context, msgs []message) error {
	s.life.Lock()
	defer s.life.Unlock()
	p, err := s.running(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := p.write(m.raw); err != nil {
			return err
		}
	}
	return nil
}

func (s *stdioSession) busy(delta int) {
	s.mu.Lock()
	s.inflight += delta
	s.lastUsed = s.u.now()
	s.mu.Unlock()
}

// servePOST forwards one POST's messages. With requests among them, the
// answer is an event stream (or, for a client accepting only JSON, one
// JSON body) holding their responses and whatever the process sends
// meanwhile; without, 202. It reports whether the messages reached a
// process.
func (s *stdioSession) servePOST(w http.ResponseWriter, r *http.Request, msgs []message, opening bool) bool {
	s.busy(1)
	defer s.busy(-1)
	sse := accepts(r, "text/event-stream")
	if !sse && !accepts(r, "application/json") {
		writeRPCError(w, http.StatusNotAcceptable, "", codeInvalidRequest, "mcpauth gateway: Accept must list application/json or text/event-stream")
		return !opening
	}
	var ids []string
	st := newStream()
	defer close(st.gone)
	s.mu.Lock()
	for _, m := range msgs {
		switch {
		case m.kind == kindRequest && m.method == "initialize":
			s.initReq = m.raw
		case m.kind == kindNotification && m.method == "notifications/initialized":
			s.initNote = m.raw
		}
		if m.kind != kindRequest {
			continue
		}
		if _, dup := s.pending[m.id]; dup || containsString(ids, m.id) {
			s.mu.Unlock()
			s.unregister(st, ids)
			writeRPCError(w, http.StatusBadRequest, m.id, codeInvalidRequest, "mcpauth gateway: a request with this id is already in flight")
			return true
		}
		ids = append(ids, m.id)
		s.pending[m.id] = st
		if sse && m.token != "" {
			s.tokens[m.token] = st
		}
	}
	if sse && len(ids) > 0 {
		s.calls = append(s.calls, st)
	}
	s.mu.Unlock()
	defer s.unregister(st, ids)

	if err := s.send(r.Context(), msgs); err != nil {
		id := ""
		if len(ids) > 0 {
			id = ids[0]
		}
		status, text := http.StatusBadGateway, "mcpauth gateway: the stdio MCP server could not be started"
		if errors.Is(err, errSessionEnded) {
			status, text = http.StatusNotFound, "mcpauth gateway: session not found"
		} else if errors.Is(err, errProcessExited) {
			text = "mcpauth gateway: the stdio MCP server exited; it is started again on this session's next request"
		}
		writeRPCError(w, status, id, codeInternalError, text)
		return false
	}
	if len(ids) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return true
	}
	if sse {
		s.streamResponses(w, r, st, ids)
	} else {
		s.jsonResponses(w, r, st, ids)
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unregister forgets a POST stream: its unanswered ids (whose late answers
// are then dropped) and its progress tokens.
func (s *stdioSession) unregister(st *stream, ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.pending[id] == st {
			delete(s.pending, id)
		}
	}
	for t, v := range s.tokens {
		if v == st {
			delete(s.tokens, t)
		}
	}
	s.dropCall(st)
}

func (s *stdioSession) dropCall(st *stream) {
	for i, c := range s.calls {
		if c == st {
			s.calls = append(s.calls[:i:i], s.calls[i+1:]...)
			return
		}
	}
}

// remaining tracks the ids a response still owes.
type remaining map[string]bool

func newRemaining(ids []string) remaining {
	r := make(remaining, len(ids))
	for _, id := range ids {
		r[id] = true
	}
	return r
}

func (s *stdioSession) streamResponses(w http.ResponseWriter, r *http.Request, st *stream, ids []string) {
	left := newRemaining(ids)
	sw := startSSE(w)
	for len(left) > 0 {
		select {
		case it := <-st.out:
			if err := sw.event(it.raw); err != nil {
				return
			}
			if it.id != "" {
				delete(left, it.id)
				if len(left) == 0 {
					s.mu.Lock()
					s.dropCall(st) // answered: later messages go elsewhere
					s.mu.Unlock()
				}
			}
		case <-r.Context().Done():
			s.u.log.Debug("POST stream: the client went away before its answer", slog.String("user_id", s.userID), slog.Any("rpc_ids", ids))
			return
		case <-s.ended:
			for id := range left {
				_ = sw.event(errorResponse(id, codeInternalError, "mcpauth gateway: the session ended before the stdio MCP server answered"))
			}
			return
		}
	}
}

func (s *stdioSession) jsonResponses(w http.ResponseWriter, r *http.Request, st *stream, ids []string) {
	left := newRemaining(ids)
	var out [][]byte
	for len(left) > 0 {
		select {
		case it := <-st.out:
			if it.id != "" && left[it.id] {
				delete(left, it.id)
				out = append(out, it.raw)
			}
		case <-r.Context().Done():
			return
		case <-s.ended:
			for id := range left {
				out = append(out, errorResponse(id, codeInternalError, "mcpauth gateway: the session ended before the stdio MCP server answered"))
			}
			left = nil
		}
	}
	w.Header().Set("Content-Type", "application/json")
	var body []byte
	if len(out) == 1 && len(ids) == 1 {
		body = out[0]
	} else {
		body = append(body, '[')
		for i, o := range out {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, o...)
		}
		body = append(body, ']')
	}
	_, _ = w.Write(append(body, '\n'))
}

// serveGET is the session's standalone event stream: messages of the
// process that belong to no open POST stream, including those queued while
// none was open. One at a time; it ends with the session or the client.
func (s *stdioSession) serveGET(ctx context.Context, w http.ResponseWriter) {
	st := newStream()
	defer close(st.gone)
	s.mu.Lock()
	if s.get != nil {
		s.mu.Unlock()
		writeRPCError(w, http.StatusConflict, "", codeInvalidRequest, "mcpauth gateway: this session already has a GET stream open")
		return
	}
	s.get = st
	queued := s.queue
	s.queue = nil
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.get == st {
			s.get = nil
		}
		s.mu.Unlock()
	}()
	sw := startSSE(w)
	for _, raw := range queued {
		if sw.event(raw) != nil {
			return
		}
	}
	for {
		select {
		case it := <-st.out:
			if sw.event(it.raw) != nil {
				return
			}
		case <-ctx.Done():
			return
		case <-s.ended:
			return
		}
	}
}
