// Command quickstart runs an MCP server protected by mcpauth: a notes
// service whose tools act for the user that owns the API key.
//
//	go run ./examples/quickstart
//
// On start it creates a demo user and key and prints the key, a ready curl
// line and MCP client configuration. Keys are kept in a SQLite file
// (mcpauth.db) and survive restarts; -db takes another file, a PostgreSQL
// URL (postgres://...) or "memory". Set MCPAUTH_PEPPER=1:<secret of 16+
// bytes> to hash keys with a server-side pepper.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	dbFlag := flag.String("db", "mcpauth.db", `key store: a SQLite file, a postgres:// URL, or "memory"`)
	newKey := flag.Bool("new-key", false, "issue a new demo key even if one from an earlier run is still active")
	flag.Parse()
	if err := run(*addr, *dbFlag, *newKey, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(addr, dbSpec string, newKey bool, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := openBackend(ctx, dbSpec)
	if err != nil {
		return err
	}
	defer b.close()
	var peppers []apikey.Pepper
	if v := os.Getenv("MCPAUTH_PEPPER"); v != "" {
		p, err := apikey.ParsePepper(v)
		if err != nil {
			return fmt.Errorf("MCPAUTH_PEPPER: %w", err)
		}
		peppers = append(peppers, p)
	}
	events, err := audit.NewWriter(b.audit, nil) // batches events off the request path
	if err != nil {
		return err
	}
	// The notifications a real app would email to the key's owner.
	notify := notify.Func(func(_ context.Context, n notify.Notification) error {
		log.Printf("notification for %s: %s key=%s %s", n.UserID, n.Type, n.KeyID, n.IP)
		return nil
	})
	a, err := newApp(b.keys, &mcpauth.Options{Peppers: peppers, Audit: events, Notifier: notify})
	if err != nil {
		return err
	}
	// Listen before issuing the demo key: a start that fails (port busy)
	// must not use up the key that is shown only once.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%w (use -addr to pick another address)", err)
	}
	defer ln.Close()
	demoKey, err := demoKey(ctx, a.keys, newKey)
	if err != nil {
		return err
	}
	printWelcome(out, "http://"+ln.Addr().String(), demoKey)

	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdown)
	return errors.Join(err, a.close(shutdown), events.Close(shutdown))
}

// demoKey returns a new raw key for the demo user, or "" when a key from an
// earlier run is still active (raw keys are never stored, so it cannot be
// shown again) and no new one was asked for.
func demoKey(ctx context.Context, m *keyadmin.Manager, force bool) (string, error) {
	if !force {
		existing, err := m.List(ctx, demoUser)
		if err != nil {
			return "", err
		}
		for _, k := range existing {
			if k.Status == store.StatusActive {
				return "", nil
			}
		}
	}
	k, err := m.Create(ctx, demoUser, keyadmin.CreateOptions{
		Name:      "quickstart demo",
		Scopes:    []string{"notes:read", "notes:write"},
		ExpiresIn: 90 * 24 * time.Hour,
	})
	return k.Raw, err
}

const demoUser = "demo-user"

func printWelcome(out io.Writer, base, key string) {
	if key == "" {
		fmt.Fprintf(out, `mcpauth quickstart: MCP server on %[1]s/mcp (health: %[1]s/health)

The demo key issued on an earlier run is still valid (keys survive restarts;
only their hashes are stored, so it cannot be shown again). To get a key now:

  go run ./examples/quickstart -new-key      (issues another demo key)
  go run ./examples/quickstart -db memory    (a throwaway store and key)

Press Ctrl-C to stop.
`, base)
		return
	}
	fmt.Fprintf(out, `mcpauth quickstart: MCP server on %[1]s/mcp (health: %[1]s/health)

Demo API key for user "demo-user" (shown once; it is not stored, only its hash is):

  %[2]s

Try it:

  curl -s %[1]s/mcp -H 'Authorization: Bearer %[2]s' \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

Claude Code:

  claude mcp add --transport http notes %[1]s/mcp --header "Authorization: Bearer %[2]s"

Other clients (Cursor, VS Code, Claude Desktop via mcp-remote...) take a headers map:

  {"mcpServers": {"notes": {"type": "http", "url": "%[1]s/mcp",
    "headers": {"Authorization": "Bearer %[2]s"}}}}

Press Ctrl-C to stop.
`, base, key)
}

// app is the quickstart server: the guard, its key manager and the routes.
type app struct {
	guard   *mcpauth.Guard
	limiter *ratelimit.Memory
	keys    *keyadmin.Manager
	handler http.Handler
}

// policy says which scope each tool needs: a notes:read key can list but
// not save; whoami needs only a valid key; any other tool is refused.
var policy = func() *scope.Policy {
	p, err := scope.LoadPolicy(strings.NewReader(`{
	  "tools": [
	    {"match": "whoami"},
	    {"match": "list_notes", "scopes": ["notes:read"]},
	    {"match": "save_note",  "scopes": ["notes:write"]}
	  ]
	}`))
	if err != nil {
		panic(err) // a constant policy: a mistake here is a programming error
	}
	return p
}()

// newApp builds the server. opts may be nil; the quickstart adds its
// policy and a 100 requests/minute per-key rate limit.
func newApp(keys store.KeyStore, opts *mcpauth.Options) (*app, error) {
	var o mcpauth.Options
	if opts != nil {
		o = *opts
	}
	limiter := ratelimit.NewMemory(nil)
	o.Policy, o.RateLimiter = policy, limiter
	guard, err := mcpauth.New(keys, &o)
	if err != nil {
		return nil, err
	}
	notes := &noteBook{byUser: map[string][]string{}}
	server := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1.0.0"}, nil)
	// Defence in depth, and per-key tools/list: a read-only key does not
	// even see save_note.
	server.AddReceivingMiddleware(gosdk.Middleware(policy))
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Tells which user and key this session acts for."}, whoami)
	mcp.AddTool(server, &mcp.Tool{Name: "save_note", Description: "Saves a note for the current user."}, notes.save)
	mcp.AddTool(server, &mcp.Tool{Name: "list_notes", Description: "Lists the current user's notes."}, notes.list)
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)

	mux := http.NewServeMux()
	mux.Handle("/mcp", guard.Require(gosdk.Bridge(mcpHandler)))
	mux.Handle("GET /health", guard.Health())
	// Key administration: the same store, peppers and Notifier; its
	// changes reach the Guard's cache at once.
	mgr, err := keyadmin.New(keys, &keyadmin.Options{Prefix: o.Prefix, Peppers: o.Peppers, Notifier: o.Notifier, Audit: o.Audit, OnChange: guard.Forget})
	if err != nil {
		return nil, errors.Join(err, guard.Close(context.Background()), limiter.Close(context.Background()))
	}
	return &app{guard: guard, limiter: limiter, keys: mgr, handler: mux}, nil
}

func (a *app) close(ctx context.Context) error {
	return errors.Join(a.keys.Close(ctx), a.guard.Close(ctx), a.limiter.Close(ctx))
}

type empty struct{}

type whoamiOut struct {
	UserID string   `json:"user_id"`
	KeyID  string   `json:"key_id"`
	Scopes []string `json:"scopes"`
}

func whoami(_ context.Context, req *mcp.CallToolRequest, _ empty) (*mcp.CallToolResult, whoamiOut, error) {
	p, ok := gosdk.Principal(req.Extra)
	if !ok {
		return nil, whoamiOut{}, errors.New("not authenticated")
	}
	return nil, whoamiOut{UserID: p.UserID, KeyID: p.KeyID, Scopes: p.Scopes}, nil
}

// noteBook keeps each user's notes apart: every access is keyed by the
// principal's UserID, never by anything the model sends.
type noteBook struct {
	mu     sync.Mutex
	byUser map[string][]string
}

type saveIn struct {
	Text string `json:"text" jsonschema:"the note to save"`
}

type notesOut struct {
	Notes []string `json:"notes"`
}

func (n *noteBook) save(_ context.Context, req *mcp.CallToolRequest, in saveIn) (*mcp.CallToolResult, notesOut, error) {
	p, ok := gosdk.Principal(req.Extra)
	if !ok {
		return nil, notesOut{}, errors.New("not authenticated")
	}
	if in.Text == "" {
		return nil, notesOut{}, errors.New("text is empty")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.byUser[p.UserID] = append(n.byUser[p.UserID], in.Text)
	return nil, notesOut{Notes: slices.Clone(n.byUser[p.UserID])}, nil
}

func (n *noteBook) list(_ context.Context, req *mcp.CallToolRequest, _ empty) (*mcp.CallToolResult, notesOut, error) {
	p, ok := gosdk.Principal(req.Extra)
	if !ok {
		return nil, notesOut{}, errors.New("not authenticated")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return nil, notesOut{Notes: append([]string{}, n.byUser[p.UserID]...)}, nil
}
