package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/cmd/mcpauth/internal/gateway"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
)

const gatewayAbout = `
Serve an MCP server behind mcpauth: API keys from this CLI's database, the
MCP policy, rate limits and audit, for a server in any language. The upstream
is a streamable HTTP endpoint (--upstream URL) or a stdio server the gateway
starts, one process per session of one user (--stdio "command args").

Settings come from the TOML file --config (or $MCPAUTH_GATEWAY_CONFIG),
then the environment ($MCPAUTH_GATEWAY_LISTEN, $MCPAUTH_GATEWAY_UPSTREAM,
$MCPAUTH_GATEWAY_STDIO, $MCPAUTH_GATEWAY_POLICY, $MCPAUTH_DB), then these
flags. SIGHUP re-reads them and applies the policy, rate limits and the
[oauth] table (re-reading the introspection client secret) without
dropping a connection; a bad file keeps the running configuration.
Rate-limit budgets live in memory, or in the Redis whose redis:// or
rediss:// URL is in $MCPAUTH_GATEWAY_REDIS (or in the variable the file's
rate_limit.redis_url_env names), shared by every instance using it; where
they live is read at start only. SIGINT or SIGTERM drains and stops.
docs/gateway.md has the whole file format.`

// envGatewayRedis holds the Redis URL of the rate-limit budgets when the
// file names no rate_limit.redis_url_env. It has no flag: a URL may hold a
// password, and a command line is visible to every local user.
const envGatewayRedis = "MCPAUTH_GATEWAY_REDIS"

// gatewayFlags are the command's own flags; "" means not given.
type gatewayFlags struct {
	config, listen, upstream, stdio, policy, tlsCert, tlsKey, audit string
}

// gatewayReload is where SIGHUP arrives; tests replace it.
var gatewayReload = func(ctx context.Context) <-chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	go func() { <-ctx.Done(); signal.Stop(c) }()
	return c
}

func (a *app) gateway(name string, args []string) error {
	fs := a.flagSet(name, "[--config FILE] (--upstream URL | --stdio COMMAND) [flags]", gatewayAbout)
	var f gatewayFlags
	fs.StringVar(&f.config, "config", "", "TOML configuration `file`; default $MCPAUTH_GATEWAY_CONFIG")
	fs.StringVar(&f.listen, "listen", "", "listen `address` (listen); default 127.0.0.1:8080")
	fs.StringVar(&f.upstream, "upstream", "", "streamable HTTP `URL` of the MCP server (upstream.url)")
	fs.StringVar(&f.stdio, "stdio", "", "stdio MCP server `command` with its arguments, split like a shell without expansion (stdio.command)")
	fs.StringVar(&f.policy, "policy", "", "JSON MCP policy `file` (policy.file)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate PEM `file` (tls.cert)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS key PEM `file` (tls.key)")
	fs.StringVar(&f.audit, "audit", "", "audit `sink`: database, stdout or off (audit.sink); default database")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	load := func() (*gateway.Config, error) { return a.gatewayConfig(f, set) }
	cfg, err := load()
	if err != nil {
		return err
	}
	log, err := gatewayLogger(a.stderr, cfg.Log)
	if err != nil {
		return usagef("%v", err)
	}

	a.g.db, a.g.tablePrefix = cfg.Database.URL, cfg.Database.TablePrefix
	res, err := a.open(false)
	if err != nil {
		return err
	}
	srv, err := gateway.New(cfg, gateway.Deps{Keys: res.keys, AuditSink: res.audit, Stdout: a.stdout, Logger: log, Getenv: a.env, Now: a.deps.now})
	if err != nil {
		return gatewayError(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = srv.Close(context.Background())
		return fmt.Errorf("listen: %w", err)
	}

	ctx, stop := context.WithCancel(a.ctx)
	defer stop()
	hup := gatewayReload(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				next, err := load()
				if err == nil {
					_, err = srv.Reload(next)
				}
				if err != nil {
					log.Error("configuration reload refused: keeping the running configuration", slog.String("error", err.Error()))
				}
			}
		}
	}()
	return srv.Serve(ctx, ln)
}

// gatewayConfig reads the file (if any), then applies the environment and
// the flags that were given, and validates the result.
func (a *app) gatewayConfig(f gatewayFlags, set map[string]bool) (*gateway.Config, error) {
	path := f.config
	if path == "" {
		path = a.env("MCPAUTH_GATEWAY_CONFIG")
	}
	cfg := &gateway.Config{}
	if path != "" {
		c, err := gateway.ReadConfigFile(path)
		if err != nil {
			return nil, usagef("gateway config %v", err)
		}
		cfg = c
	}
	// The environment, then the flags: later wins.
	type override struct {
		env, flag, value string
		apply            func(string) error
	}
	str := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	stdio := func(v string) error {
		argv, err := splitCommand(v)
		if err != nil {
			return err
		}
		cfg.Stdio.Command = argv
		return nil
	}
	defDB := a.env("MCPAUTH_DB")
	if defDB == "" {
		defDB = defaultDBFile
	}
	// Global flags may come before the command name, outside fs: a value
	// other than the default was given.
	global := func(name, value, def string) bool { return set[name] || value != def }
	applied := map[string]bool{}
	for _, o := range []override{
		{"MCPAUTH_GATEWAY_LISTEN", "listen", f.listen, str(&cfg.Listen)},
		{"MCPAUTH_GATEWAY_UPSTREAM", "upstream", f.upstream, str(&cfg.Upstream.URL)},
		{"MCPAUTH_GATEWAY_STDIO", "stdio", f.stdio, stdio},
		{"MCPAUTH_GATEWAY_POLICY", "policy", f.policy, str(&cfg.Policy.File)},
		{"", "tls-cert", f.tlsCert, str(&cfg.TLS.Cert)},
		{"", "tls-key", f.tlsKey, str(&cfg.TLS.Key)},
		{"", "audit", f.audit, str(&cfg.Audit.Sink)},
	} {
		var v, from string
		switch {
		case set[o.flag]:
			v, from = o.value, "--"+o.flag
		case o.env != "" && a.env(o.env) != "":
			v, from = a.env(o.env), "$"+o.env
		default:
			continue
		}
		if err := o.apply(v); err != nil {
			return nil, usagef("%s: %v", from, err)
		}
		applied[o.flag] = true
	}
	if cfg.RateLimit.RedisURLEnv == "" && a.env(envGatewayRedis) != "" {
		cfg.RateLimit.RedisURLEnv = envGatewayRedis
	}
	// An upstream named by flag or environment replaces the file's, of
	// either kind.
	switch {
	case applied["upstream"] && !applied["stdio"]:
		cfg.Stdio.Command = nil
	case applied["stdio"] && !applied["upstream"]:
		cfg.Upstream.URL = ""
	}
	if global("db", a.g.db, defDB) || cfg.Database.URL == "" {
		cfg.Database.URL = a.g.db
	}
	if global("table-prefix", a.g.tablePrefix, sqlaudit.DefaultTablePrefix) || cfg.Database.TablePrefix == "" {
		cfg.Database.TablePrefix = a.g.tablePrefix
	}
	if global("prefix", a.g.prefix, apikey.DefaultPrefix) || cfg.Keys.Prefix == "" {
		cfg.Keys.Prefix = a.g.prefix
	}
	if global("pepper-env", a.g.pepperEnv, "MCPAUTH_PEPPER") {
		cfg.Keys.PepperEnv, cfg.Keys.PepperFile = a.g.pepperEnv, ""
	}
	if err := cfg.Validate(); err != nil {
		return nil, gatewayError(err)
	}
	return cfg, nil
}

// gatewayError makes configuration errors usage errors (exit 2), naming
// the field.
func gatewayError(err error) error {
	var fe *gateway.FieldError
	if errors.As(err, &fe) {
		return usagef("gateway config: %s: %s", fe.Field, fe.Msg)
	}
	return err
}

func gatewayLogger(w io.Writer, c gateway.LogConfig) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %v", err)
	}
	o := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return slog.New(slog.NewJSONHandler(w, o)), nil
}

// splitCommand splits a command line into words like a POSIX shell would
// without expanding anything: blanks separate words; single quotes keep
// everything; double quotes keep everything but \" and \\; a backslash
// outside quotes keeps the next character.
func splitCommand(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	if len(out) == 0 {
		return nil, errors.New("empty command")
	}
	return out, nil
}
