package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// The API keys page: the user's keys for their own agents (Claude Code,
// Cursor, ...), created, rotated and revoked through the key Manager. A new
// raw key is rendered in the response to the POST that made it and nowhere
// else: it is not put in the session, not logged, and the page is no-store.

type keyRow struct {
	keyadmin.KeyInfo
	Active  bool
	Managed bool // the assistant's own key
}

type newKey struct {
	Raw     string
	Key     keyadmin.KeyInfo
	Old     *keyadmin.KeyInfo // set for a rotation
	Claude  string
	Headers string
}

type keysView struct {
	Keys      []keyRow
	New       *newKey
	Scopes    []string
	Lifetimes []lifetime
	Graces    []lifetime
	Claude    string // the snippets with a placeholder for the key
	Headers   string
}

type lifetime struct {
	Label   string
	Seconds int
}

var (
	keyLifetimes = []lifetime{{"7 days", 7 * 86400}, {"30 days", 30 * 86400}, {"90 days", 90 * 86400}, {"1 year", 365 * 86400}}
	graceChoices = []lifetime{{"revoke the old key now", 0}, {"1 hour", 3600}, {"1 day", 86400}, {"7 days", 7 * 86400}}
)

func (p *pages) keysPage(w http.ResponseWriter, r *http.Request, u user) {
	p.renderKeys(w, r, u, http.StatusOK, nil, "")
}

func (p *pages) renderKeys(w http.ResponseWriter, r *http.Request, u user, status int, nk *newKey, errMsg string) {
	infos, err := p.a.keys.List(r.Context(), u.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	v := keysView{Scopes: allScopes, Lifetimes: keyLifetimes, Graces: graceChoices, New: nk}
	v.Claude, v.Headers = p.snippets("YOUR_KEY")
	slices.Reverse(infos) // newest first
	for _, k := range infos {
		v.Keys = append(v.Keys, keyRow{KeyInfo: k, Active: k.Status == store.StatusActive, Managed: k.Metadata[managedMetadata] != ""})
	}
	p.render(w, r, status, "keys", view{Title: "API keys", Error: errMsg, Data: v})
}

// snippets are the Claude Code command and the JSON headers configuration
// for a key.
func (p *pages) snippets(raw string) (claude, headers string) {
	url := p.a.cfg.baseURL + "/mcp"
	claude = `claude mcp add --transport http docsearch ` + url + ` --header "Authorization: Bearer ` + raw + `"`
	type server struct {
		Type    string            `json:"type"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	b, _ := json.MarshalIndent(map[string]map[string]server{"mcpServers": {"docsearch": {
		Type: "http", URL: url, Headers: map[string]string{"Authorization": "Bearer " + raw},
	}}}, "", "  ")
	return claude, string(b)
}

func (p *pages) keyCreate(w http.ResponseWriter, r *http.Request, u user) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		p.renderKeys(w, r, u, http.StatusBadRequest, nil, "The form could not be read.")
		return
	}
	seconds, err := strconv.Atoi(r.PostFormValue("expires_in"))
	if err != nil || !slices.ContainsFunc(keyLifetimes, func(l lifetime) bool { return l.Seconds == seconds }) {
		p.renderKeys(w, r, u, http.StatusBadRequest, nil, "Choose an expiry from the list.")
		return
	}
	created, err := p.a.keys.Create(r.Context(), u.ID, keyadmin.CreateOptions{
		Name:      r.PostFormValue("name"),
		Scopes:    r.PostForm["scopes"],
		ExpiresIn: time.Duration(seconds) * time.Second,
	})
	if err != nil {
		p.keyError(w, r, u, err)
		return
	}
	p.showNewKey(w, r, u, created, "")
}

// showNewKey renders the keys page with the new raw key, shown this once;
// for a rotation oldID names the key it replaces.
func (p *pages) showNewKey(w http.ResponseWriter, r *http.Request, u user, created keyadmin.CreatedKey, oldID string) {
	k, err := p.a.keys.Get(r.Context(), created.Key.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	nk := &newKey{Raw: created.Raw, Key: k}
	if oldID != "" {
		old, err := p.a.keys.Get(r.Context(), oldID)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		nk.Old = &old
	}
	nk.Claude, nk.Headers = p.snippets(created.Raw)
	p.renderKeys(w, r, u, http.StatusCreated, nk, "")
}

// ownKey returns the signed-in user's key {id}; another user's key ID is
// answered like an unknown one.
func (p *pages) ownKey(w http.ResponseWriter, r *http.Request, u user) (keyadmin.KeyInfo, bool) {
	k, err := p.a.keys.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, keyadmin.ErrKeyNotFound) || (err == nil && k.UserID != u.ID) {
		p.renderKeys(w, r, u, http.StatusNotFound, nil, "No such key.")
		return keyadmin.KeyInfo{}, false
	}
	if err != nil {
		p.fail(w, r, err)
		return keyadmin.KeyInfo{}, false
	}
	return k, true
}

func (p *pages) keyRotate(w http.ResponseWriter, r *http.Request, u user) {
	old, ok := p.ownKey(w, r, u)
	if !ok {
		return
	}
	if old.Metadata[managedMetadata] != "" {
		p.renderKeys(w, r, u, http.StatusBadRequest, nil, "The assistant renews its own key; revoke it instead, and it gets a new one on the next question.")
		return
	}
	seconds, err := strconv.Atoi(r.PostFormValue("grace"))
	if err != nil || !slices.ContainsFunc(graceChoices, func(l lifetime) bool { return l.Seconds == seconds }) {
		p.renderKeys(w, r, u, http.StatusBadRequest, nil, "Choose a grace period from the list.")
		return
	}
	created, err := p.a.keys.Rotate(r.Context(), old.ID, time.Duration(seconds)*time.Second)
	if err != nil {
		p.keyError(w, r, u, err)
		return
	}
	p.showNewKey(w, r, u, created, old.ID)
}

func (p *pages) keyRevoke(w http.ResponseWriter, r *http.Request, u user) {
	k, ok := p.ownKey(w, r, u)
	if !ok {
		return
	}
	if err := p.a.keys.Revoke(r.Context(), k.ID); err != nil {
		p.fail(w, r, err)
		return
	}
	p.redirect(w, r, "/keys", "Key "+k.ID+" revoked. Agents using it are refused from now on.")
}

// keyError shows the Manager's refusals (they name the field) and hides
// anything else.
func (p *pages) keyError(w http.ResponseWriter, r *http.Request, u user, err error) {
	var ve *keyadmin.ValidationError
	switch {
	case errors.As(err, &ve):
		p.renderKeys(w, r, u, http.StatusBadRequest, nil, "Check the "+ve.Field+": "+ve.Message+".")
	case errors.Is(err, keyadmin.ErrTooManyKeys):
		p.renderKeys(w, r, u, http.StatusConflict, nil, "You have too many active keys; revoke one first.")
	case errors.Is(err, keyadmin.ErrScopeNotAllowed):
		p.renderKeys(w, r, u, http.StatusForbidden, nil, "One of those scopes is not allowed for your account.")
	default:
		p.fail(w, r, err)
	}
}
