package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// globals are the flags every command accepts, before or after its name.
type globals struct {
	db          string
	pepperEnv   string
	prefix      string
	tablePrefix string
	json        bool
}

var globalFlagNames = map[string]bool{"db": true, "pepper-env": true, "prefix": true, "table-prefix": true, "json": true}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.db, "db", g.db, "database: a SQLite file `path`, or a postgres:// or postgresql:// URL; default $MCPAUTH_DB, else mcpauth.db")
	fs.StringVar(&g.pepperEnv, "pepper-env", g.pepperEnv, "environment variable `NAME` holding the current pepper as version:secret")
	fs.StringVar(&g.prefix, "prefix", g.prefix, "key `prefix` the server uses")
	fs.StringVar(&g.tablePrefix, "table-prefix", g.tablePrefix, "database table name `prefix`")
	fs.BoolVar(&g.json, "json", g.json, "print JSON instead of tables, for scripts")
}

// app is one invocation of the CLI.
type app struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	env    func(string) string
	deps   deps
	g      globals
	res    *resources // opened lazily
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// errTampered carries an audit verify failure (exit code 4) that was
// already reported.
var errTampered = errors.New("audit chain broken")

// errHelp means help was printed: exit 0.
var errHelp = errors.New("help printed")

const topUsage = `Usage: mcpauth [global flags] <command> [flags] [arguments]

mcpauth manages the API keys and the audit log of an mcpauth deployment,
in a SQLite file or a PostgreSQL database.

Commands:
  migrate              create or upgrade the key and audit tables
  keys create          issue a key; the raw key is printed once, to stdout
  keys list            list a user's keys
  keys show            show one key
  keys rotate          issue a replacement key, keep the old one for a grace period
  keys revoke          revoke a key now
  keys revoke-all      revoke every active key of a user
  keys import-legacy   import keys stored as SHA-256 of the whole raw key
  audit tail           print the latest audit events, and follow new ones
  audit query          search the audit log, a page at a time
  audit export         write audit events as JSON lines or CSV
  audit verify         check the audit log's hash chain
  gateway              serve an MCP server in any language behind keys, policy, limits and audit

Run "mcpauth <command> --help" for a command's flags.

Global flags (accepted before or after the command):
`

const topFooter = `
Environment:
  MCPAUTH_DB               default for --db
  MCPAUTH_PEPPER           current pepper, "version:secret" (name set by --pepper-env)
  MCPAUTH_PEPPERS_RETIRED  retired peppers, comma-separated "version:secret"
  MCPAUTH_CHANGES_REDIS    redis:// or rediss:// URL: key changes are also announced there
  MCPAUTH_CHANGES_CHANNEL  channel key changes are announced on; "off" for none

Exit codes:
  0  success
  1  runtime failure (database unreachable, store error)
  2  usage error (unknown command or flag, missing or invalid value)
  3  not found (no key with that ID)
  4  audit verify found the hash chain broken
`

func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string, d deps) int {
	a := &app{ctx: ctx, stdout: stdout, stderr: stderr, env: env, deps: d}
	a.g = globals{db: env("MCPAUTH_DB"), pepperEnv: "MCPAUTH_PEPPER", prefix: apikey.DefaultPrefix, tablePrefix: sqlaudit.DefaultTablePrefix}
	if a.g.db == "" {
		a.g.db = defaultDBFile
	}
	err := a.dispatch(args)
	if a.res != nil {
		a.res.close()
	}
	return a.exit(err)
}

func (a *app) exit(err error) int {
	var ue *usageError
	var ve *keyadmin.ValidationError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errTampered):
		return exitTampered
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "mcpauth: %s\n", ue.msg)
		return exitUsage
	case errors.Is(err, keyadmin.ErrKeyNotFound):
		var nf *notFoundError
		if errors.As(err, &nf) {
			fmt.Fprintf(a.stderr, "mcpauth: no key with ID %q\n", nf.id)
		} else {
			fmt.Fprintf(a.stderr, "mcpauth: %v\n", err)
		}
		return exitNotFound
	case errors.As(err, &ve):
		fmt.Fprintf(a.stderr, "mcpauth: invalid %s: %s\n", flagForField(ve.Field), ve.Message)
		return exitUsage
	case errors.Is(err, keyadmin.ErrScopeNotAllowed):
		fmt.Fprintf(a.stderr, "mcpauth: --scope: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(a.stderr, "mcpauth: %v\n", err)
		return exitFailure
	}
}

// notFoundError names the key that does not exist.
type notFoundError struct{ id string }

func (e *notFoundError) Error() string        { return "no key with ID " + e.id }
func (e *notFoundError) Is(target error) bool { return target == keyadmin.ErrKeyNotFound }

// flagForField names the flag (or argument) behind a Manager validation
// error's field: "scopes[1]" is the second --scope.
func flagForField(field string) string {
	name, index, ok := strings.Cut(field, "[")
	if ok {
		if i, err := strconv.Atoi(strings.TrimSuffix(index, "]")); err == nil {
			return flagName(name) + " #" + strconv.Itoa(i+1)
		}
	}
	return flagName(name)
}

func flagName(name string) string {
	switch name {
	case "user_id":
		return "--user"
	case "name":
		return "--name"
	case "scopes":
		return "--scope"
	case "allowed_cidrs":
		return "--cidr"
	case "expires_in":
		return "--expires"
	case "rate_limit":
		return "--rate-limit"
	case "metadata":
		return "--meta"
	case "hash":
		return "--sha256"
	case "grace":
		return "--grace"
	case "id":
		return "key ID"
	}
	return name
}

type command struct {
	name    string
	summary string
	run     func(a *app, name string, args []string) error
}

func commands() []command {
	return []command{
		{"migrate", "create or upgrade the key and audit tables", (*app).migrate},
		{"keys create", "issue a key", (*app).keysCreate},
		{"keys list", "list a user's keys", (*app).keysList},
		{"keys show", "show one key", (*app).keysShow},
		{"keys rotate", "rotate a key", (*app).keysRotate},
		{"keys revoke", "revoke a key", (*app).keysRevoke},
		{"keys revoke-all", "revoke every active key of a user", (*app).keysRevokeAll},
		{"keys import-legacy", "import legacy SHA-256 keys", (*app).keysImportLegacy},
		{"audit tail", "print the latest audit events", (*app).auditTail},
		{"audit query", "search the audit log", (*app).auditQuery},
		{"audit export", "export audit events", (*app).auditExport},
		{"audit verify", "check the audit hash chain", (*app).auditVerify},
		{"gateway", "serve an MCP server behind mcpauth", (*app).gateway},
	}
}

func (a *app) dispatch(args []string) error {
	fs := flag.NewFlagSet("mcpauth", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.g.register(fs)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.printTopUsage(a.stdout, fs)
			return errHelp
		}
		return usagef("%s (see mcpauth --help)", flagError(err))
	}
	rest := fs.Args()
	if len(rest) == 0 {
		a.printTopUsage(a.stderr, fs)
		return usagef("no command given")
	}
	group := rest[0]
	if group == "help" {
		a.printTopUsage(a.stdout, fs)
		return errHelp
	}
	var sub []command
	for _, c := range commands() {
		if c.name == group {
			return c.run(a, c.name, rest[1:])
		}
		if strings.HasPrefix(c.name, group+" ") {
			sub = append(sub, c)
		}
	}
	if len(sub) == 0 {
		return usagef("unknown command %q (see mcpauth --help)", group)
	}
	if len(rest) < 2 || rest[1] == "-h" || rest[1] == "--help" || rest[1] == "-help" || rest[1] == "help" {
		if len(rest) < 2 {
			a.printGroupUsage(a.stderr, group, sub)
			return usagef("%s: no subcommand given", group)
		}
		a.printGroupUsage(a.stdout, group, sub)
		return errHelp
	}
	for _, c := range sub {
		if c.name == group+" "+rest[1] {
			return c.run(a, c.name, rest[2:])
		}
	}
	return usagef("unknown command %q (see mcpauth %s --help)", group+" "+rest[1], group)
}

func (a *app) printTopUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, topUsage)
	fs.VisitAll(func(f *flag.Flag) { printFlag(w, f) })
	fmt.Fprint(w, topFooter)
}

func (a *app) printGroupUsage(w io.Writer, group string, sub []command) {
	fmt.Fprintf(w, "Usage: mcpauth %s <command> [flags] [arguments]\n\nCommands:\n", group)
	for _, c := range sub {
		fmt.Fprintf(w, "  %-20s %s\n", strings.TrimPrefix(c.name, group+" "), c.summary)
	}
	fmt.Fprintf(w, "\nRun \"mcpauth %s <command> --help\" for a command's flags.\n", group)
}

// flagSet returns a flag set for a command, with the global flags too.
// synopsis follows "mcpauth <name>" in the usage line; about is a paragraph.
func (a *app) flagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("mcpauth "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.g.register(fs)
	fs.Usage = func() {
		w := fs.Output() // io.Discard while parsing: usage is printed for --help only
		fmt.Fprintf(w, "Usage: mcpauth %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(about))
		var local []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) {
			if !globalFlagNames[f.Name] {
				local = append(local, f)
			}
		})
		if len(local) > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			sort.Slice(local, func(i, j int) bool { return local[i].Name < local[j].Name })
			for _, f := range local {
				printFlag(w, f)
			}
		}
		fmt.Fprint(w, "\nGlobal flags --db, --pepper-env, --prefix, --table-prefix and --json are accepted too (see mcpauth --help).\n")
	}
	return fs
}

// printFlag prints one flag the way flag.PrintDefaults does, with "--".
func printFlag(w io.Writer, f *flag.Flag) {
	name, usage := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if name != "" {
		line += " " + name
	}
	fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	// --db's default is never shown: it may be a URL with a password.
	if f.Name != "db" && f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
		fmt.Fprintf(w, " (default %s)", f.DefValue)
	}
	fmt.Fprintln(w)
}

// parse parses a command's flags, interleaved with its positional
// arguments, and checks their number.
func (a *app) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		in := args
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(a.stdout)
				fs.Usage()
				return nil, errHelp
			}
			return nil, usagef("%s: %s (see %s --help)", strings.TrimPrefix(fs.Name(), "mcpauth "), flagError(err), fs.Name())
		}
		args = fs.Args()
		if consumed := len(in) - len(args); consumed > 0 && in[consumed-1] == "--" {
			pos = append(pos, args...) // everything after "--" is an argument
			break
		}
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	name := strings.TrimPrefix(fs.Name(), "mcpauth ")
	switch {
	case len(pos) < minArgs:
		return nil, usagef("%s: missing argument (see %s --help)", name, fs.Name())
	case len(pos) > maxArgs:
		return nil, usagef("%s: unexpected argument %q (see %s --help)", name, pos[maxArgs], fs.Name())
	}
	return pos, nil
}

// flagError rewrites the flag package's messages to name flags with "--".
func flagError(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "not defined: -", "not defined: --")
	s = strings.ReplaceAll(s, "for flag -", "for flag --")
	s = strings.ReplaceAll(s, "needs an argument: -", "needs an argument: --")
	return s
}

// required fails when a required flag was not given.
func required(name, flagName, value string) error {
	if strings.TrimSpace(value) == "" {
		return usagef("%s: --%s is required", name, flagName)
	}
	return nil
}
