package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// createFlags are the settings of a new key, shared by create and
// import-legacy.
type createFlags struct {
	user      string
	name      string
	scopes    listFlag
	cidrs     listFlag
	meta      listFlag
	expires   lifetimeFlag
	rateLimit int
	ceiling   listFlag
}

// ceilingUsage documents --ceiling, on create, import-legacy and rotate.
const ceilingUsage = "the highest `scope` this command may issue, such as admin or documents:*; repeat for several (default: any scope except admin and wildcards)"

func (c *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.user, "user", "", "the host application's user `ID` the key acts for (required)")
	fs.StringVar(&c.name, "name", "", "a label for the key, such as \"claude desktop on laptop\"")
	fs.Var(&c.scopes, "scope", "a `scope` the key grants; repeat for several")
	fs.Var(&c.cidrs, "cidr", "a client address or CIDR `prefix` the key may be used from; repeat for several (default anywhere)")
	fs.Var(&c.meta, "meta", "a `name=value` metadata entry; repeat for several")
	fs.Var(&c.expires, "expires", "key `lifetime`, such as 720h or 30d, or never (default 90d)")
	fs.IntVar(&c.rateLimit, "rate-limit", 0, "requests per minute for this key (default: the server's policy)")
	fs.Var(&c.ceiling, "ceiling", ceilingUsage)
}

func (c *createFlags) options(cmd string) (keyadmin.CreateOptions, error) {
	o := keyadmin.CreateOptions{
		Name: c.name, Scopes: c.scopes, AllowedCIDRs: c.cidrs, ExpiresIn: c.expires.d, RateLimit: c.rateLimit,
	}
	if c.rateLimit < 0 {
		return o, usagef("%s: --rate-limit must not be negative", cmd)
	}
	for _, m := range c.meta {
		name, value, ok := strings.Cut(m, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return o, usagef("%s: --meta %q: want name=value", cmd, m)
		}
		if o.Metadata == nil {
			o.Metadata = map[string]string{}
		}
		o.Metadata[name] = value
	}
	return o, nil
}

// warnNoPepper tells the operator that a new key will be hashed without a
// pepper, which the server will accept but which is weaker.
func (a *app) warnNoPepper() {
	if a.env(a.g.pepperEnv) == "" {
		fmt.Fprintf(a.stderr, "warning: $%s is not set: the key is hashed with plain SHA-256; set it to the server's pepper (version:secret)\n", a.g.pepperEnv)
	}
}

const aboutCreate = `Issues a key for a user. The raw key is printed once, to stdout, and
nowhere else: the database keeps only its hash. Its details go to stderr
(or, with --json, the key and its details are one JSON object on stdout).
Set the same pepper the server uses ($MCPAUTH_PEPPER, "version:secret").`

func (a *app) keysCreate(name string, args []string) error {
	fs := a.flagSet(name, "--user ID [flags]", aboutCreate)
	var c createFlags
	c.register(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := required(name, "user", c.user); err != nil {
		return err
	}
	o, err := c.options(name)
	if err != nil {
		return err
	}
	m, err := a.manager(c.expires.managerLifetime(), c.ceiling...)
	if err != nil {
		return err
	}
	k, err := m.Create(a.ctx, c.user, o)
	if err != nil {
		return err
	}
	a.warnNoPepper()
	info, err := m.Get(a.ctx, k.Key.ID)
	if err != nil {
		return fmt.Errorf("key %s was created, but reading it back failed: %w", k.Key.ID, err)
	}
	return a.printNewKey(k.Raw, info, "Created key "+info.ID+" for user "+info.UserID+".")
}

// printNewKey prints a raw key once, to stdout, and its details to stderr.
func (a *app) printNewKey(raw string, info keyadmin.KeyInfo, headline string, old ...keyadmin.KeyInfo) error {
	if a.g.json {
		out := keyadmin.NewKeyResponse{RawKey: raw, Key: normal(info)} // the keys API's shape
		if len(old) > 0 {
			o := normal(old[0])
			out.OldKey = &o
		}
		return writeJSON(a.stdout, out)
	}
	fmt.Fprintln(a.stderr, headline)
	printKey(a.stderr, info)
	if _, err := fmt.Fprintln(a.stdout, raw); err != nil {
		return err
	}
	fmt.Fprintln(a.stderr, "The raw key was printed to stdout, once: store it now. mcpauth keeps only its hash.")
	return nil
}

func (a *app) keysList(name string, args []string) error {
	fs := a.flagSet(name, "--user ID", `Lists a user's keys, oldest first, revoked and expired ones included.
Never shows a secret.`)
	user := fs.String("user", "", "the user `ID` (required)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := required(name, "user", *user); err != nil {
		return err
	}
	m, err := a.manager(0)
	if err != nil {
		return err
	}
	keys, err := m.List(a.ctx, *user)
	if err != nil {
		return err
	}
	for i := range keys {
		keys[i] = normal(keys[i])
	}
	if a.g.json {
		return writeJSON(a.stdout, keys)
	}
	if len(keys) == 0 {
		fmt.Fprintf(a.stderr, "user %s has no keys\n", *user)
		return nil
	}
	printKeys(a.stdout, keys)
	return nil
}

// maxKeyIDLen bounds what is echoed back of a key ID argument.
const maxKeyIDLen = 64

// keyID checks a key ID argument. Given a whole raw key by mistake, it
// uses the key's ID and never prints the key.
func (a *app) keyID(name, arg string) (string, error) {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return "", usagef("%s: the key ID must not be empty", name)
	}
	if pk, err := apikey.ParseKey(arg, a.g.prefix); err == nil {
		fmt.Fprintf(a.stderr, "warning: that is a whole key, not a key ID: using its ID %s. The key is now in your shell history; consider rotating it.\n", pk.ID)
		return pk.ID, nil
	}
	if strings.HasPrefix(arg, a.g.prefix+"_") {
		return "", usagef("%s: the argument looks like a whole key but does not parse (mistyped?); give the key ID (12 characters, shown by keys list)", name)
	}
	if len(arg) > maxKeyIDLen {
		return "", usagef("%s: the argument is %d characters long, not a key ID (12 characters, shown by keys list)", name, len(arg))
	}
	return arg, nil
}

func (a *app) keysShow(name string, args []string) error {
	fs := a.flagSet(name, "ID", "Shows one key's details. Never shows a secret.")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := a.keyID(name, pos[0])
	if err != nil {
		return err
	}
	m, err := a.manager(0)
	if err != nil {
		return err
	}
	k, err := m.Get(a.ctx, id)
	if err != nil {
		return withID(err, id)
	}
	if a.g.json {
		return writeJSON(a.stdout, normal(k))
	}
	printKey(a.stdout, k)
	return nil
}

// withID names the key in a not-found error.
func withID(err error, id string) error {
	if errors.Is(err, keyadmin.ErrKeyNotFound) {
		return &notFoundError{id: id}
	}
	return err
}

func (a *app) keysRotate(name string, args []string) error {
	fs := a.flagSet(name, "ID [--grace 24h]", `Issues a new key with the old key's settings (user, name, scopes, limits,
the same lifetime from now) and keeps the old key working for the grace
period, never past its own expiry; --grace 0 revokes it at once. The new raw
key is printed once, to stdout; details go to stderr.`)
	grace := durationFlag{d: 24 * time.Hour}
	fs.Var(&grace, "grace", "how long the old key keeps working, such as 24h or 7d (at most 7d); 0 revokes it now")
	var ceiling listFlag
	fs.Var(&ceiling, "ceiling", ceilingUsage)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := a.keyID(name, pos[0])
	if err != nil {
		return err
	}
	m, err := a.manager(0, ceiling...)
	if err != nil {
		return err
	}
	fresh, err := m.Rotate(a.ctx, id, grace.d)
	if err != nil && fresh.Raw == "" {
		return withID(err, id)
	}
	a.warnNoPepper()
	if err != nil {
		// The new key exists: it must be shown, or nobody will ever see it.
		fmt.Fprintf(a.stderr, "mcpauth: %v\n", err)
	}
	info, gerr := m.Get(a.ctx, fresh.Key.ID)
	old, oerr := m.Get(a.ctx, id)
	if gerr != nil || oerr != nil {
		info = keyadmin.KeyInfo{ID: fresh.Key.ID, UserID: fresh.Key.UserID}
	}
	headline := "Rotated key " + old.ID + " to " + info.ID + "."
	if old.Status == "active" && !old.ExpiresAt.IsZero() {
		headline += " The old key keeps working until " + showTime(old.ExpiresAt, "") + "."
	} else {
		headline += " The old key no longer works."
	}
	if perr := a.printNewKey(fresh.Raw, info, headline, old); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("rotation incomplete: revoke %s yourself", id)
	}
	return nil
}

func (a *app) keysRevoke(name string, args []string) error {
	fs := a.flagSet(name, "ID", `Revokes a key now. Servers stop accepting it within their cache TTL
(30s by default). Revoking a revoked key is not an error.`)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := a.keyID(name, pos[0])
	if err != nil {
		return err
	}
	m, err := a.manager(0)
	if err != nil {
		return err
	}
	if err := m.Revoke(a.ctx, id); err != nil {
		return withID(err, id)
	}
	k, err := m.Get(a.ctx, id)
	if err != nil {
		return err
	}
	if a.g.json {
		return writeJSON(a.stdout, normal(k))
	}
	fmt.Fprintf(a.stdout, "revoked %s (user %s) at %s\n", k.ID, k.UserID, showTime(k.RevokedAt, "-"))
	return nil
}

func (a *app) keysRevokeAll(name string, args []string) error {
	fs := a.flagSet(name, "--user ID", `Revokes every active key of a user at once, for a compromised account.`)
	user := fs.String("user", "", "the user `ID` (required)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := required(name, "user", *user); err != nil {
		return err
	}
	m, err := a.manager(0)
	if err != nil {
		return err
	}
	n, err := m.RevokeAllForUser(a.ctx, *user)
	if err != nil {
		return fmt.Errorf("revoked %d keys of user %s, then: %w", n, *user, err)
	}
	if a.g.json {
		return writeJSON(a.stdout, map[string]any{"user_id": *user, "revoked": n})
	}
	fmt.Fprintf(a.stdout, "revoked %d active keys of user %s\n", n, *user)
	return nil
}

func (a *app) keysImportLegacy(name string, args []string) error {
	fs := a.flagSet(name, "--user ID --sha256 HEX [--sha256 HEX]... [flags]", `Imports keys that a hand-rolled setup stored as the hex SHA-256 of the
whole raw key, so agents configured with them keep working once the server
runs with Options.AcceptLegacyKeys. The raw keys are not needed. Each
imported key gets an ID derived from its hash ("lg..."), shown in the output.`)
	var c createFlags
	c.register(fs)
	var hashes listFlag
	fs.Var(&hashes, "sha256", "the stored `hex` SHA-256 of a legacy key; repeat for several (required)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := required(name, "user", c.user); err != nil {
		return err
	}
	if len(hashes) == 0 {
		return usagef("%s: --sha256 is required", name)
	}
	o, err := c.options(name)
	if err != nil {
		return err
	}
	m, err := a.manager(c.expires.managerLifetime(), c.ceiling...)
	if err != nil {
		return err
	}
	var done []keyadmin.KeyInfo
	for i, h := range hashes {
		k, err := m.ImportLegacy(a.ctx, c.user, h, o)
		if err != nil {
			if len(done) > 0 {
				a.printImported(done)
			}
			return fmt.Errorf("--sha256 #%d: %w (%d imported before it)", i+1, err, len(done))
		}
		done = append(done, normal(k))
	}
	return a.printImported(done)
}

func (a *app) printImported(keys []keyadmin.KeyInfo) error {
	if a.g.json {
		return writeJSON(a.stdout, keys)
	}
	printKeys(a.stdout, keys)
	fmt.Fprintf(a.stderr, "imported %d legacy keys; the server accepts them only with AcceptLegacyKeys\n", len(keys))
	return nil
}
