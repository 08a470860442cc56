package audit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lossLine is one decoded loss summary line.
type lossLine struct {
	Level              string            `json:"level"`
	Msg                string            `json:"msg"`
	DroppedQueueFull   uint64            `json:"dropped_queue_full"`
	DroppedCallerShare uint64            `json:"dropped_caller_share"`
	Failed             uint64            `json:"failed"`
	Since              time.Time         `json:"since"`
	Keys               map[string]uint64 `json:"keys"`
}

func (l lossLine) total() uint64 { return l.DroppedQueueFull + l.DroppedCallerShare + l.Failed }

func lossLines(t *testing.T, buf *syncBuffer) []lossLine {
	t.Helper()
	var out []lossLine
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		var l lossLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		require.Equal(t, audit.LossMessage, l.Msg)
		require.Equal(t, "ERROR", l.Level)
		out = append(out, l)
	}
	return out
}

func jsonLogger(buf *syncBuffer) *slog.Logger { return slog.New(slog.NewJSONHandler(buf, nil)) }

// TestWriterCallerShareKeepsVictimEvents is finding 10: one caller floods a
// BestEffort Writer whose sink is stuck while a victim records 20 events in
// between; every victim event must be written. Before the caller share the
// flood filled the queue and the victim's events were dropped.
func TestWriterCallerShareKeepsVictimEvents(t *testing.T) {
	flood := func(keyID, userID, ip string) func(i int) audit.Event {
		return func(i int) audit.Event {
			return audit.Event{ID: fmt.Sprintf("f%06d", i), KeyID: keyID, UserID: userID, ClientIP: ip,
				Outcome: audit.OutcomeAllowed, Method: "notifications/progress"}
		}
	}
	victim := func(i int) audit.Event {
		return audit.Event{ID: fmt.Sprintf("v%02d", i), KeyID: "kVictim", UserID: "alice", ClientIP: "198.51.100.2",
			Outcome: audit.OutcomeAllowed, Method: "tools/call", Tool: "search"}
	}
	attacks := []struct {
		name     string
		flooders []func(i int) audit.Event // take turns
	}{
		{"one key", []func(int) audit.Event{flood("kFlood", "mallory", "203.0.113.9")}},
		{"one user without key", []func(int) audit.Event{flood("", "mallory", "203.0.113.9")}},
		{"one address, unauthenticated", []func(int) audit.Event{flood("", "", "203.0.113.9")}},
		{"the victim's user through another key", []func(int) audit.Event{flood("kOther", "alice", "198.51.100.2")}},
		{"three keys at once", []func(int) audit.Event{
			flood("kF1", "mallory", "203.0.113.9"), flood("kF2", "mallory", "203.0.113.9"), flood("kF3", "mallory", "203.0.113.9"),
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			const floodN, victimN = 100_000, 20
			g := newGate(false)
			var logs syncBuffer
			w := newWriter(t, g, audit.WriterOptions{QueueSize: 1000, BatchSize: 100, Logger: jsonLogger(&logs)})
			ctx := context.Background()
			require.NoError(t, w.Record(ctx, a.flooders[0](0)))
			<-g.entered // the sink is stuck in its first write: the queue only fills
			v := 0
			for i := 1; i < floodN; i++ {
				require.NoError(t, w.Record(ctx, a.flooders[i%len(a.flooders)](i)))
				if i%(floodN/victimN) == 1 {
					require.NoError(t, w.Record(ctx, victim(v)))
					v++
				}
			}
			require.Equal(t, victimN, v)
			close(g.release)
			require.NoError(t, w.Close(ctx))

			var got []string
			flooded := 0
			for _, e := range g.events() {
				if e.KeyID == "kVictim" {
					got = append(got, e.ID)
				} else {
					flooded++
				}
			}
			want := make([]string, victimN)
			for i := range want {
				want[i] = fmt.Sprintf("v%02d", i)
			}
			assert.Equal(t, want, got, "no victim event may be pushed out by the flood")

			s := w.Stats()
			assert.Equal(t, uint64(floodN-flooded), s.Dropped, "every flood event not written is counted")
			assert.Equal(t, s.Dropped, s.DroppedQueueFull+s.DroppedCallerShare)
			assert.NotZero(t, s.DroppedCallerShare)
			assert.Equal(t, uint64(floodN+victimN), s.Written+s.Dropped)
			var logged uint64
			for _, l := range lossLines(t, &logs) {
				logged += l.total()
				assert.NotContains(t, l.Keys, "kVictim")
			}
			assert.Equal(t, s.Dropped, logged, "every drop is in a log line by Close")
		})
	}
}

// TestWriterCallerShareLeavesFreeSlots pins the rule: a caller's events are
// queued while it holds fewer than the free slots, so one caller alone gets
// half the queue and the other half stays free for everyone else.
func TestWriterCallerShareLeavesFreeSlots(t *testing.T) {
	cases := []struct {
		name               string
		unsafe             bool
		queued             int // of 100 events of one caller, queue of 10
		byShare, fullQueue uint64
	}{
		{"share on (default)", false, 5, 95, 0},
		{"UnsafeNoCallerShare", true, 10, 0, 90},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGate(false)
			w := newWriter(t, g, audit.WriterOptions{QueueSize: 10, BatchSize: 1, UnsafeNoCallerShare: c.unsafe})
			ctx := context.Background()
			require.NoError(t, w.Record(ctx, ev(-1)))
			<-g.entered
			for i := range 100 {
				require.NoError(t, w.Record(ctx, ev(i)))
			}
			s := w.Stats()
			assert.Equal(t, c.queued+1, s.Queued)
			assert.Equal(t, c.byShare, s.DroppedCallerShare)
			assert.Equal(t, c.fullQueue, s.DroppedQueueFull)
			assert.Equal(t, s.DroppedCallerShare+s.DroppedQueueFull, s.Dropped)
			close(g.release)
		})
	}
}

// TestWriterLossLogRateLimited: drops are logged at once, then at most once
// per LossLogInterval of the injected clock, with counts that add up to
// Stats, at most 5 key IDs, and nothing else from the events.
func TestWriterLossLogRateLimited(t *testing.T) {
	g := newGate(false)
	clk := newClock()
	var logs syncBuffer
	w := newWriter(t, g, audit.WriterOptions{QueueSize: 8, BatchSize: 1, Now: clk.Now,
		LossLogInterval: 10 * time.Second, Logger: jsonLogger(&logs)})
	ctx := context.Background()
	secret := func(keyID string) audit.Event {
		return audit.Event{KeyID: keyID, UserID: "user-secret", ClientIP: "192.0.2.77", Tool: "tool-secret",
			Arguments: json.RawMessage(`{"q":"argument-secret"}`), Outcome: audit.OutcomeAllowed}
	}
	require.NoError(t, w.Record(ctx, secret("k0")))
	<-g.entered
	fill := func(keyID string, n int) {
		for range n {
			require.NoError(t, w.Record(ctx, secret(keyID)))
		}
	}
	fill("kA", 1000) // 4 queued, the rest dropped
	lines := lossLines(t, &logs)
	require.Len(t, lines, 1, "the first drop is logged at once, the rest wait")
	assert.Equal(t, audit.LossMessage, lines[0].Msg)
	assert.Equal(t, uint64(1), lines[0].total())
	assert.Equal(t, clk.Now(), lines[0].Since)

	clk.Advance(9 * time.Second)
	fill("kA", 100)
	for i := range 8 {
		fill(fmt.Sprintf("kB%d", i), 10+i)
	}
	require.Len(t, lossLines(t, &logs), 1, "within the interval: no new line")

	clk.Advance(time.Second)
	fill("kC", 64) // drops read the clock at least every 64 drops
	lines = lossLines(t, &logs)
	require.Len(t, lines, 2, "one line once the interval has passed")
	assert.LessOrEqual(t, lines[0].total()+lines[1].total(), w.Stats().Dropped)
	assert.Greater(t, lines[0].total()+lines[1].total(), w.Stats().Dropped-64, "the line counts every drop since the first")
	assert.Equal(t, map[string]uint64{"kA": 1}, lines[0].Keys)
	require.Len(t, lines[1].Keys, 5, "the 5 keys with the most losses")
	assert.Equal(t, uint64(1095), lines[1].Keys["kA"])
	for _, k := range []string{"kB0", "kB1", "kB2", "kB3"} {
		assert.NotContains(t, lines[1].Keys, k, "fewer losses than the 5 named")
	}

	clk.Advance(time.Second)
	fill("kD", 3)
	require.Len(t, lossLines(t, &logs), 2)
	close(g.release)
	require.NoError(t, w.Close(ctx))
	lines = lossLines(t, &logs)
	require.Len(t, lines, 3, "Close logs what is left")
	assert.Equal(t, uint64(3), lines[2].Keys["kD"])

	var logged uint64
	for _, l := range lines {
		logged += l.total()
	}
	s := w.Stats()
	assert.Equal(t, s.Dropped, logged)
	for _, leak := range []string{"user-secret", "192.0.2.77", "tool-secret", "argument-secret"} {
		assert.NotContains(t, logs.String(), leak, "loss lines carry key IDs and counts only")
	}
}

// TestWriterLogsSinkFailures is finding 13: batches given up after sink
// errors (a database outage) are logged by default, rate-limited, with
// counts and key IDs, without the error text (which may quote event
// values).
func TestWriterLogsSinkFailures(t *testing.T) {
	leaky := errors.New(`insert failed: value "user-secret" violates constraint`)
	modes := []audit.Mode{audit.BestEffort, audit.Blocking}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			g := newGate(true)
			g.fails, g.err = -1, leaky
			clk := newClock()
			var logs syncBuffer
			w := newWriter(t, g, audit.WriterOptions{Mode: mode, MaxRetries: -1, BatchSize: 100, FlushInterval: time.Hour, Now: clk.Now,
				Logger: jsonLogger(&logs)})
			ctx := context.Background()
			for i := range 5 {
				e := ev(i)
				e.UserID = "user-secret"
				require.NoError(t, w.Record(ctx, e))
			}
			require.NoError(t, w.Flush(ctx))
			lines := lossLines(t, &logs)
			require.Len(t, lines, 1)
			assert.Equal(t, uint64(5), lines[0].Failed)
			assert.Equal(t, map[string]uint64{"k1": 5}, lines[0].Keys)

			require.NoError(t, w.Record(ctx, ev(5)))
			require.NoError(t, w.Flush(ctx))
			require.Len(t, lossLines(t, &logs), 1, "rate-limited")
			require.NoError(t, w.Close(ctx))
			lines = lossLines(t, &logs)
			require.Len(t, lines, 2)
			assert.Equal(t, uint64(1), lines[1].Failed)
			assert.Equal(t, uint64(6), w.Stats().Failed)
			assert.NotContains(t, logs.String(), "user-secret")
		})
	}
}

// TestWriterLossLogDefaultLogger: without a Logger, losses go to
// slog.Default().
func TestWriterLossLogDefaultLogger(t *testing.T) {
	var logs syncBuffer
	old := slog.Default()
	slog.SetDefault(jsonLogger(&logs))
	t.Cleanup(func() { slog.SetDefault(old) })
	g := newGate(true)
	g.fails = -1
	w, err := audit.NewWriter(g, &audit.WriterOptions{MaxRetries: -1})
	require.NoError(t, err)
	require.NoError(t, w.Record(context.Background(), ev(1)))
	require.NoError(t, w.Close(context.Background()))
	lines := lossLines(t, &logs)
	require.Len(t, lines, 1)
	assert.Equal(t, uint64(1), lines[0].Failed)
}
