package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHelp(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, args := range [][]string{
		{"--help"},
		{"-h"},
		{"help"},
		{"keys", "--help"},
		{"audit", "-h"},
		{"migrate", "--help"},
		{"keys", "create", "--help"},
		{"keys", "list", "--help"},
		{"keys", "show", "--help"},
		{"keys", "rotate", "--help"},
		{"keys", "revoke", "--help"},
		{"keys", "revoke-all", "--help"},
		{"keys", "import-legacy", "--help"},
		{"audit", "tail", "--help"},
		{"audit", "query", "--help"},
		{"audit", "export", "--help"},
		{"audit", "verify", "-help"},
		{"keys", "create", "--user", "u", "--help"}, // help wins, nothing is created
	} {
		r := h.runRaw(args...)
		require.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
		assert.True(t, strings.HasPrefix(r.stdout, "Usage: mcpauth"), "%v", args)
		assert.Empty(t, r.stderr, "%v", args)
	}
	_, err := os.Stat(h.db)
	assert.ErrorIs(t, err, os.ErrNotExist, "help touches no database")
	h.golden("help")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.must(exitOK, "migrate")
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"no subcommand", []string{"keys"}, "keys: no subcommand given"},
		{"unknown subcommand", []string{"keys", "delete"}, `unknown command "keys delete"`},
		{"unknown global flag", []string{"--verbose", "keys", "list"}, "flag provided but not defined: --verbose"},
		{"unknown command flag", []string{"keys", "list", "--usr", "u"}, "keys list: flag provided but not defined: --usr"},
		{"create without user", []string{"keys", "create", "--name", "x"}, "--user is required"},
		{"create blank user", []string{"keys", "create", "--user", "  "}, "--user is required"},
		{"bad expires", []string{"keys", "create", "--user", "u", "--expires", "soon"}, `invalid value "soon" for flag --expires`},
		{"zero expires", []string{"keys", "create", "--user", "u", "--expires", "0"}, "for flag --expires: must be positive"},
		{"negative expires", []string{"keys", "create", "--user", "u", "--expires", "-5h"}, "flag --expires"},
		{"bad rate limit", []string{"keys", "create", "--user", "u", "--rate-limit", "lots"}, "for flag --rate-limit"},
		{"negative rate limit", []string{"keys", "create", "--user", "u", "--rate-limit", "-1"}, "--rate-limit must not be negative"},
		{"bad scope", []string{"keys", "create", "--user", "u", "--scope", "documents:read", "--scope", "bad scope!"}, "invalid --scope #2"},
		{"bad cidr", []string{"keys", "create", "--user", "u", "--cidr", "10.0.0.0/33"}, `invalid --cidr #1: "10.0.0.0/33"`},
		{"bad meta", []string{"keys", "create", "--user", "u", "--meta", "novalue"}, `--meta "novalue": want name=value`},
		{"long name", []string{"keys", "create", "--user", "u", "--name", strings.Repeat("n", 201)}, "invalid --name"},
		{"flag without value", []string{"keys", "create", "--user"}, "flag needs an argument: --user"},
		{"create with argument", []string{"keys", "create", "--user", "u", "extra"}, `unexpected argument "extra"`},
		{"list without user", []string{"keys", "list"}, "keys list: --user is required"},
		{"show without id", []string{"keys", "show"}, "keys show: missing argument"},
		{"show two ids", []string{"keys", "show", "a", "b"}, `unexpected argument "b"`},
		{"show empty id", []string{"keys", "show", ""}, "the key ID must not be empty"},
		{"rotate bad grace", []string{"keys", "rotate", "AbCdEfGhIjKl", "--grace", "forever"}, "for flag --grace"},
		{"rotate negative grace", []string{"keys", "rotate", "AbCdEfGhIjKl", "--grace", "-1h"}, "flag --grace: must not be negative"},
		{"revoke without id", []string{"keys", "revoke"}, "keys revoke: missing argument"},
		{"revoke-all without user", []string{"keys", "revoke-all"}, "--user is required"},
		{"import without hash", []string{"keys", "import-legacy", "--user", "u"}, "--sha256 is required"},
		{"import bad hash", []string{"keys", "import-legacy", "--user", "u", "--sha256", "abc"}, "invalid --sha256: want 64 hex digits"},
		{"bad table prefix", []string{"--table-prefix", "Bad-Prefix", "keys", "list", "--user", "u"}, "--table-prefix"},
		{"empty db", []string{"--db", "", "keys", "list", "--user", "u"}, "--db must not be empty"},
		{"other url scheme", []string{"--db", "mysql://root:hunter2@db/x", "keys", "list", "--user", "u"}, "neither a file path nor a postgres:// URL"},
		{"bad outcome", []string{"audit", "query", "--outcome", "fine"}, `--outcome "fine"`},
		{"bad action", []string{"audit", "query", "--action", "deleted"}, `--action "deleted"`},
		{"bad from", []string{"audit", "query", "--from", "last tuesday"}, "for flag --from"},
		{"from after to", []string{"audit", "query", "--from", "2026-02-01", "--to", "2026-01-01"}, "--from must be before --to"},
		{"bad limit", []string{"audit", "query", "--limit", "0"}, "--limit must be between 1 and 1000"},
		{"bad cursor", []string{"audit", "query", "--cursor", "nope"}, `--cursor "nope"`},
		{"tail bad n", []string{"audit", "tail", "-n", "5000"}, "-n must be between 0 and 1000"},
		{"tail bad interval", []string{"audit", "tail", "--interval", "1ms"}, "--interval must be at least 10ms"},
		{"export bad format", []string{"audit", "export", "--format", "xml"}, `--format "xml": want jsonl or csv`},
		{"verify bad to", []string{"audit", "verify", "--to", "tomorrow"}, "for flag --to"},
	}
	for _, tc := range cases {
		r := h.run(tc.args...)
		assert.Equal(t, exitUsage, r.code, "%s: %v\n%s", tc.name, tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, tc.name)
		assert.NotContains(t, r.stderr, "hunter2", tc.name)
		assert.NotRegexp(t, rawKeyRE, r.stdout+r.stderr, tc.name)
	}
	// Nothing was created by any of them.
	r := h.must(exitOK, "keys", "list", "--user", "u", "--json")
	assert.Equal(t, "[]\n", r.stdout)
}

func TestRuntimeFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.must(exitFailure, "keys", "list", "--user", "u")
	assert.Contains(t, r.stderr, "does not exist: run \"mcpauth migrate\" first")
	_, err := os.Stat(h.db)
	assert.ErrorIs(t, err, os.ErrNotExist, "a missing database is not created by other commands")

	// A file that exists but was never migrated.
	require.NoError(t, os.WriteFile(h.db, nil, 0o600))
	r = h.must(exitFailure, "keys", "show", "AbCdEfGhIjKl")
	assert.Contains(t, r.stderr, "no such table")

	// A PostgreSQL server that is not there; the password stays out of messages.
	r = h.runRaw("--db", "postgres://admin:hunter2@127.0.0.1:1/mcpauth?connect_timeout=2", "keys", "list", "--user", "u")
	assert.Equal(t, exitFailure, r.code)
	assert.Contains(t, r.stderr, "connect to PostgreSQL database")
	assert.NotContains(t, r.stderr, "hunter2")
}
