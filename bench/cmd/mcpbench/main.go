// Command mcpbench measures what mcpauth costs a real MCP server: the same
// go-sdk server with one trivial tool, bare and behind mcpauth (API key,
// per-tool policy, in-memory rate limit, hash-chained SQL audit), each in a
// child process of its own with the same heap ballast, loaded in turn by
// the same load generator over loopback HTTP, in interleaved rounds.
//
//	go run ./bench/cmd/mcpbench -clients 16 -rounds 6 -duration 5s
//	go run ./bench/cmd/mcpbench -stateful
//	go run ./bench/cmd/mcpbench -audit postgres -dsn postgres://...
//	go run ./bench/cmd/mcpbench -metrics   # the protected server also records metrics (otelmetrics)
//
// For each round and server it prints requests/s, p50 and p99 latency and
// the server's CPU time per request (from /proc, Linux only; 0 elsewhere),
// then the medians and the protected/bare ratios.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	serve := flag.String("serve", "", "internal: run a server (bare or protected) and print its address")
	stateful := flag.Bool("stateful", false, "stateful MCP sessions (initialize, then calls with Mcp-Session-Id); default stateless")
	auditTo := flag.String("audit", "sqlite", "protected server's audit store: sqlite, postgres or none")
	dsn := flag.String("dsn", os.Getenv("MCPAUTH_TEST_POSTGRES_DSN"), "PostgreSQL URL for -audit postgres")
	ballast := flag.Int("ballast", 32, "MiB of heap ballast in each server, so that both carry the same live heap")
	clients := flag.Int("clients", 16, "concurrent clients")
	rounds := flag.Int("rounds", 6, "rounds; each loads both servers, in alternating order")
	duration := flag.Duration("duration", 5*time.Second, "load time per server per round")
	warmup := flag.Duration("warmup", 2*time.Second, "load time per server before the first round, not counted")
	profile := flag.String("cpuprofile", "", "write the protected server's CPU profile to this file (and the bare server's to this file + \".bare\")")
	flag.BoolVar(&withMetrics, "metrics", false, "protected server: also record metrics (otelmetrics into the OpenTelemetry SDK)")
	flag.Parse()
	if *serve != "" {
		if *profile != "" {
			f, err := os.Create(*profile)
			if err != nil {
				log.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				log.Fatal(err)
			}
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
		if err := runServer(*serve, *stateful, *auditTo, *dsn, *ballast); err != nil {
			log.Print(err)
		}
		return
	}
	cfg := loadConfig{clients: *clients, rounds: *rounds, duration: *duration, warmup: *warmup, stateful: *stateful}
	if err := runLoad(cfg, *auditTo, *dsn, *ballast, *profile); err != nil {
		log.Fatal(err)
	}
}

type loadConfig struct {
	clients  int
	rounds   int
	duration time.Duration
	warmup   time.Duration
	stateful bool
}

// child is one server process.
type child struct {
	name string
	cmd  *exec.Cmd
	url  string
	key  string // empty for the bare server
	in   io.WriteCloser
}

func startChild(name string, stateful bool, auditTo, dsn string, ballast int, profile string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve", name, "-audit", auditTo, "-dsn", dsn, "-ballast", strconv.Itoa(ballast)}
	if stateful {
		args = append(args, "-stateful")
	}
	if withMetrics {
		args = append(args, "-metrics")
	}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s server: %w", name, err)
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "URL" {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s server said %q", name, line)
	}
	c := &child{name: name, cmd: cmd, url: f[1], in: in}
	if len(f) == 4 && f[2] == "KEY" {
		c.key = f[3]
	}
	return c, nil
}

func (c *child) stop() {
	_ = c.in.Close() // the server exits when its stdin closes
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
	}
}

// cpu returns the process's user+system CPU time so far.
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// result is one server's figures in one round.
type result struct {
	reqs     int
	errs     int
	rate     float64 // requests/s
	p50, p99 time.Duration
	cpuPer   time.Duration // server CPU per request
}

func runLoad(cfg loadConfig, auditTo, dsn string, ballast int, profile string) error {
	bareProfile := ""
	if profile != "" {
		bareProfile = profile + ".bare"
	}
	bare, err := startChild("bare", cfg.stateful, auditTo, dsn, ballast, bareProfile)
	if err != nil {
		return err
	}
	defer bare.stop()
	prot, err := startChild("protected", cfg.stateful, auditTo, dsn, ballast, profile)
	if err != nil {
		return err
	}
	defer prot.stop()
	mode := "stateless"
	if cfg.stateful {
		mode = "stateful"
	}
	fmt.Printf("mcpbench: %s, %d clients, %d rounds of %v per server, ballast %d MiB, audit %s\n",
		mode, cfg.clients, cfg.rounds, cfg.duration, ballast, auditTo)
	for _, c := range []*child{bare, prot} {
		if _, err := load(c, cfg, cfg.warmup); err != nil {
			return fmt.Errorf("warm-up of %s: %w", c.name, err)
		}
	}
	all := map[string][]result{}
	for r := range cfg.rounds {
		order := []*child{bare, prot}
		if r%2 == 1 {
			order = []*child{prot, bare}
		}
		for _, c := range order {
			res, err := load(c, cfg, cfg.duration)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, c.name, err)
			}
			all[c.name] = append(all[c.name], res)
			fmt.Printf("round %d %-9s %8.0f req/s  p50 %7v  p99 %7v  cpu/req %7v  errors %d\n",
				r+1, c.name, res.rate, res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond), res.cpuPer.Round(100*time.Nanosecond), res.errs)
		}
	}
	b, p := medians(all["bare"]), medians(all["protected"])
	fmt.Printf("median bare      %8.0f req/s  p50 %7v  p99 %7v  cpu/req %7v\n", b.rate, b.p50.Round(time.Microsecond), b.p99.Round(time.Microsecond), b.cpuPer.Round(100*time.Nanosecond))
	fmt.Printf("median protected %8.0f req/s  p50 %7v  p99 %7v  cpu/req %7v\n", p.rate, p.p50.Round(time.Microsecond), p.p99.Round(time.Microsecond), p.cpuPer.Round(100*time.Nanosecond))
	fmt.Printf("protected/bare: throughput %.3f, cpu per request %.3f, p50 %.2f, p99 %.2f\n",
		p.rate/b.rate, float64(p.cpuPer)/float64(max(b.cpuPer, 1)), float64(p.p50)/float64(b.p50), float64(p.p99)/float64(b.p99))
	return nil
}

// medians returns the median of each figure over the rounds.
func medians(rs []result) result {
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return result{
		rate:   med(func(r result) float64 { return r.rate }),
		p50:    time.Duration(med(func(r result) float64 { return float64(r.p50) })),
		p99:    time.Duration(med(func(r result) float64 { return float64(r.p99) })),
		cpuPer: time.Duration(med(func(r result) float64 { return float64(r.cpuPer) })),
	}
}

// load runs cfg.clients clients against c for d and returns the figures.
func load(c *child, cfg loadConfig, d time.Duration) (result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.clients, MaxConnsPerHost: cfg.clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	sessions := make([]string, cfg.clients)
	if cfg.stateful {
		for i := range sessions {
			s, err := initialize(hc, c)
			if err != nil {
				return result{}, err
			}
			sessions[i] = s
		}
	}
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		errs    atomic.Int64
		firstMu sync.Mutex
		first   error
	)
	lat := make([][]time.Duration, cfg.clients)
	cpu0 := c.cpu()
	start := time.Now()
	for i := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id int64
			for !stop.Load() {
				id++
				body := `{"jsonrpc":"2.0","id":` + strconv.FormatInt(id, 10) + `,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`
				t0 := time.Now()
				err := call(hc, c, sessions[i], body)
				if err != nil {
					errs.Add(1)
					firstMu.Lock()
					if first == nil {
						first = err
					}
					firstMu.Unlock()
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	cpu := c.cpu() - cpu0
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return result{}, fmt.Errorf("no request succeeded: %v", first)
	}
	if n := errs.Load(); n > int64(len(all))/100 {
		return result{}, fmt.Errorf("%d of %d requests failed, first: %v", n, int64(len(all))+n, first)
	}
	slices.Sort(all)
	return result{
		reqs:   len(all),
		errs:   int(errs.Load()),
		rate:   float64(len(all)) / elapsed.Seconds(),
		p50:    all[len(all)/2],
		p99:    all[len(all)*99/100],
		cpuPer: cpu / time.Duration(len(all)),
	}, nil
}

func newPost(c *child, session, body string) *http.Request {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, c.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	return req
}

// call sends one tools/call and checks that it returned a result.
func call(hc *http.Client, c *child, session, body string) error {
	resp, err := hc.Do(newPost(c, session, body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"result"`)) || bytes.Contains(b, []byte(`"isError":true`)) {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	return nil
}

// initialize opens a session and returns its ID.
func initialize(hc *http.Client, c *child) (string, error) {
	resp, err := hc.Do(newPost(c, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpbench","version":"1"}}}`))
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || s == "" {
		return "", fmt.Errorf("initialize: status %d, session %q", resp.StatusCode, s)
	}
	resp, err = hc.Do(newPost(c, s, `{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", errors.New("notifications/initialized: status " + resp.Status)
	}
	return s, nil
}
