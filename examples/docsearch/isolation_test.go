package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// tenant is one user of the isolation suite, with their documents, a key
// that may do everything, an MCP session on it, and a signed-in browser.
type tenant struct {
	id     string
	marker string // in every title and body of theirs, and nowhere else
	docs   []document
	key    keyadmin.CreatedKey
	cs     *mcp.ClientSession
	b      *browser
}

// leakCheck scans responses for anything of other tenants.
type leakCheck struct {
	t        *testing.T
	tenants  []*tenant
	checked  int
	leaks    int
	surfaces map[string]bool
}

var idPatterns = []*regexp.Regexp{
	regexp.MustCompile(`/documents/(\d+)`),
	regexp.MustCompile(`docs://documents/(\d+)`),
	regexp.MustCompile(`"(?:id|deleted)":\s*(\d+)`),
}

// scan counts one response of surface, seen by u, and every trace of
// another tenant in it: a title, a body, a key ID, a document ID.
func (c *leakCheck) scan(u *tenant, surface, body string) {
	c.t.Helper()
	c.checked++
	c.surfaces[surface] = true
	for _, o := range c.tenants {
		if o == u {
			continue
		}
		var found []string
		if strings.Contains(strings.ToLower(body), o.marker) {
			found = append(found, "marker "+o.marker+" (title or body)")
		}
		if strings.Contains(body, o.key.Key.ID) {
			found = append(found, "key ID "+o.key.Key.ID)
		}
		for _, re := range idPatterns {
			for _, m := range re.FindAllStringSubmatch(body, -1) {
				for _, d := range o.docs {
					if m[1] == strconv.FormatInt(d.ID, 10) {
						found = append(found, "document ID "+m[1])
					}
				}
			}
		}
		if len(found) > 0 {
			c.leaks++
			c.t.Errorf("%s: %s sees %s's %v", surface, u.id, o.id, found)
		}
	}
}

// same checks that probing another tenant's object answered exactly like
// probing one that does not exist: the two responses are equal once the
// ID each named is replaced by a placeholder.
func (c *leakCheck) same(u *tenant, surface string, foreign, foreignID, missing, missingID string) {
	c.t.Helper()
	f, m := normalizeID(foreign, foreignID), normalizeID(missing, missingID)
	assert.Equal(c.t, m, f, "%s: another user's ID answers unlike a nonexistent one", surface)
	c.scan(u, surface, f)
}

// normalizeID replaces id where it stands as a word of its own ("document
// 8 not found", "docs://documents/8"), not inside another ("utf-8").
func normalizeID(body, id string) string {
	return regexp.MustCompile(`(^|[^\w-])`+regexp.QuoteMeta(id)+`\b`).ReplaceAllString(body, "${1}{ID}")
}

// callText is what the client got from a tools/call: the result as JSON, or
// the error's code, message and data.
func callText(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	return resultText(t, res, err)
}

func resultText(t *testing.T, res any, err error) string {
	t.Helper()
	if err != nil {
		if rpcErr, ok := err.(*jsonrpc.Error); ok {
			return fmt.Sprintf("error %d %s %s", rpcErr.Code, rpcErr.Message, rpcErr.Data)
		}
		return "error " + err.Error()
	}
	b, jerr := json.Marshal(res)
	require.NoError(t, jerr)
	return string(b)
}

func readText(t *testing.T, cs *mcp.ClientSession, uri string) string {
	t.Helper()
	res, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: uri})
	return resultText(t, res, err)
}

// keysPageError is the status and error message of a keys page response:
// the page around it lists the caller's own keys, whose last-used times
// may change between two requests.
var errorElement = regexp.MustCompile(`<p class="error"[^>]*>[^<]*</p>`)

func keysPageError(status int, body string) string {
	return strconv.Itoa(status) + " " + errorElement.FindString(body)
}

// TestIsolation: N users × M documents × every tool, resource, page and
// keys endpoint, each with the user's own key and session. No response
// holds another user's title, body, key ID or document ID, and another
// user's document or key ID answers exactly like one that does not exist.
func TestIsolation(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		const nUsers, nDocs = 4, 5
		e := newTestEnv(t, backend, nil)
		ctx := context.Background()
		c := &leakCheck{t: t, surfaces: map[string]bool{}}
		for i := range nUsers {
			u := &tenant{id: fmt.Sprintf("tenant%d", i), marker: fmt.Sprintf("zq%cmarker", 'a'+i)}
			require.NoError(t, e.app.users.upsert(ctx, u.id, u.id+"@example.com", "Tenant "+strconv.Itoa(i), "password-"+u.id, true, e.clock.now()))
			e.demo[u.id] = demoUser{ID: u.id, Email: u.id + "@example.com", Password: "password-" + u.id}
			for j := range nDocs {
				d, err := e.app.docs.create(ctx, u.id, fmt.Sprintf("Quarterly %s report %d", u.marker, j),
					fmt.Sprintf("The quarterly numbers of %s, part %d: revenue grew. Unique %sbody%d.", u.marker, j, u.marker, j))
				require.NoError(t, err)
				u.docs = append(u.docs, d)
			}
			var err error
			u.key, err = e.app.keys.Create(ctx, u.id, keyadmin.CreateOptions{Name: "agent of " + u.id, Scopes: allScopes})
			require.NoError(t, err)
			u.cs = e.mustConnect(u.key.Raw)
			u.b = e.login(u.id)
			c.tenants = append(c.tenants, u)
		}
		const missingDoc = 987654321
		missingDocS := strconv.Itoa(missingDoc)
		const missingKey = "zzzzzzzzzzzz" // well-formed, never issued

		for _, u := range c.tenants {
			// Own data works, so that "no leak" is not "nothing works".
			got := callText(t, u.cs, "search_documents", map[string]any{"query": "quarterly revenue", "limit": 10})
			c.scan(u, "tools/call search_documents (shared words)", got)
			var found searchOut
			require.NoError(t, json.Unmarshal([]byte(got), &struct {
				S *searchOut `json:"structuredContent"`
			}{&found}))
			assert.Len(t, found.Results, nDocs, "%s finds all and only their documents", u.id)
			own := u.docs[0]
			c.scan(u, "tools/call get_document (own)", callText(t, u.cs, "get_document", map[string]any{"id": own.ID}))
			c.scan(u, "resources/read (own)", readText(t, u.cs, docURI(own.ID)))
			tools, err := u.cs.ListTools(ctx, nil)
			c.scan(u, "tools/list", resultText(t, tools, err))
			templates, err := u.cs.ListResourceTemplates(ctx, nil)
			c.scan(u, "resources/templates/list", resultText(t, templates, err))
			created := callText(t, u.cs, "create_document", map[string]any{"title": "new note of " + u.id, "body": "written by the agent"})
			c.scan(u, "tools/call create_document", created)
			assert.Equal(t, 1, e.countRows("documents", "user_id = $1 AND title = $2", u.id, "new note of "+u.id), "created in the caller's account")

			missingGet := callText(t, u.cs, "get_document", map[string]any{"id": missingDoc})
			missingDel := callText(t, u.cs, "delete_document", map[string]any{"id": missingDoc})
			missingRead := readText(t, u.cs, "docs://documents/"+missingDocS)
			_, missingPage := u.b.get("/documents/" + missingDocS)
			s, b := u.b.postForm("/documents/"+missingDocS+"/delete", nil)
			missingPageDel := strconv.Itoa(s) + b
			for _, o := range c.tenants {
				if o == u {
					continue
				}
				for _, d := range o.docs {
					id := strconv.FormatInt(d.ID, 10)
					c.scan(u, "tools/call search_documents (their words)", callText(t, u.cs, "search_documents",
						map[string]any{"query": fmt.Sprintf("%s %sbody%d", o.marker, o.marker, d.ID%int64(nDocs))}))
					c.same(u, "tools/call get_document (their ID)", callText(t, u.cs, "get_document", map[string]any{"id": d.ID}), id, missingGet, missingDocS)
					c.same(u, "tools/call delete_document (their ID)", callText(t, u.cs, "delete_document", map[string]any{"id": d.ID}), id, missingDel, missingDocS)
					c.same(u, "resources/read (their ID)", readText(t, u.cs, docURI(d.ID)), id, missingRead, missingDocS)
					_, page := u.b.get("/documents/" + id)
					c.same(u, "GET /documents/{id} (their ID)", page, id, missingPage, missingDocS)
					s, b := u.b.postForm("/documents/"+id+"/delete", nil)
					c.same(u, "POST /documents/{id}/delete (their ID)", strconv.Itoa(s)+b, id, missingPageDel, missingDocS)
					assert.Equal(t, 1, e.countRows("documents", "id = $1", d.ID), "%s's document %d survives %s", o.id, d.ID, u.id)
				}
			}

			// Pages.
			_, page := u.b.get("/documents")
			c.scan(u, "GET /documents", page)
			assert.Contains(t, page, u.docs[0].Title)
			// Asking with other tenants' words: the page echoes the question
			// (the asker's own text), and nothing else of theirs.
			question := "quarterly revenue " + c.tenants[0].marker + " " + c.tenants[1].marker
			_, page = u.b.postForm("/assistant", url.Values{"question": {question}})
			c.scan(u, "POST /assistant", strings.ReplaceAll(page, `value="`+question+`"`, ""))
			assert.Contains(t, page, `class="cite"`, "%s's answer cites their own documents", u.id)
			_, body := u.b.json(http.MethodPost, "/api/assistant", map[string]string{"question": "quarterly numbers revenue"})
			c.scan(u, "POST /api/assistant", body)
			_, page = u.b.get("/keys")
			c.scan(u, "GET /keys", page)
			_, body = u.b.get("/api/keys")
			c.scan(u, "GET /api/keys", body)

			// Keys endpoints with another user's key ID.
			ms, mb := u.b.json(http.MethodGet, "/api/keys/"+missingKey, nil)
			missingAPIGet := strconv.Itoa(ms) + mb
			ms, mb = u.b.json(http.MethodDelete, "/api/keys/"+missingKey, nil)
			missingAPIDel := strconv.Itoa(ms) + mb
			ms, mb = u.b.json(http.MethodPost, "/api/keys/"+missingKey+"/rotate", nil)
			missingAPIRot := strconv.Itoa(ms) + mb
			missingRevoke := keysPageError(u.b.postForm("/keys/"+missingKey+"/revoke", nil))
			missingRotate := keysPageError(u.b.postForm("/keys/"+missingKey+"/rotate", url.Values{"grace": {"0"}}))
			for _, o := range c.tenants {
				if o == u {
					continue
				}
				id := o.key.Key.ID
				s, b := u.b.json(http.MethodGet, "/api/keys/"+id, nil)
				c.same(u, "GET /api/keys/{id} (their key)", strconv.Itoa(s)+b, id, missingAPIGet, missingKey)
				s, b = u.b.json(http.MethodDelete, "/api/keys/"+id, nil)
				c.same(u, "DELETE /api/keys/{id} (their key)", strconv.Itoa(s)+b, id, missingAPIDel, missingKey)
				s, b = u.b.json(http.MethodPost, "/api/keys/"+id+"/rotate", nil)
				c.same(u, "POST /api/keys/{id}/rotate (their key)", strconv.Itoa(s)+b, id, missingAPIRot, missingKey)
				c.same(u, "POST /keys/{id}/revoke (their key)", keysPageError(u.b.postForm("/keys/"+id+"/revoke", nil)), id, missingRevoke, missingKey)
				c.same(u, "POST /keys/{id}/rotate (their key)", keysPageError(u.b.postForm("/keys/"+id+"/rotate", url.Values{"grace": {"0"}})), id, missingRotate, missingKey)
				k, err := e.app.keys.Get(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, store.StatusActive, k.Status, "%s's key survives %s", o.id, u.id)
			}
		}
		// Activity last, when every tenant's agent has done everything.
		e.flushAudit()
		// Each tenant's activity lists the resources/read probes they sent
		// with other tenants' document IDs: their own requests, echoed.
		// Those rows read like the probe of a nonexistent ID; any row of
		// another tenant would name that tenant's key ID, which scan finds.
		probe := regexp.MustCompile(`resources/read docs://documents/\d+`)
		for _, u := range c.tenants {
			_, page := u.b.get("/activity")
			for _, row := range probeRows(page, probe) {
				assert.Equal(t, probeRows(page, regexp.MustCompile(`resources/read docs://documents/`+missingDocS))[0], row,
					"a probe of another tenant's ID is recorded like one of a nonexistent ID")
			}
			c.scan(u, "GET /activity", probe.ReplaceAllString(page, "resources/read docs://documents/{probe}"))
			assert.Contains(t, page, u.key.Key.ID, "%s's activity shows their own agent", u.id)
		}
		for _, u := range c.tenants {
			n := e.countRows("mcpauth_keys", "user_id = $1", u.id)
			assert.Equal(t, 2, n, "%s holds their key and the assistant's, no more (no rotation of theirs by others)", u.id)
		}
		surfaces := make([]string, 0, len(c.surfaces))
		for s := range c.surfaces {
			surfaces = append(surfaces, s)
		}
		sort.Strings(surfaces)
		t.Logf("isolation on %s: %d users × %d documents × %d surfaces: %d responses checked, %d leaks\n  %s",
			backend, nUsers, nDocs, len(surfaces), c.checked, c.leaks, strings.Join(surfaces, "\n  "))
		assert.Zero(t, c.leaks)
	})
}

// probeRows returns the activity table rows whose "What" cell matches re,
// with the time cell and the URI's ID removed.
func probeRows(page string, re *regexp.Regexp) []string {
	var out []string
	for _, row := range strings.Split(page, "<tr ") {
		if re.MatchString(row) {
			row = regexp.MustCompile(`<td>\d{4}-[^<]*</td>`).ReplaceAllString(row, "")
			out = append(out, regexp.MustCompile(`docs://documents/\d+`).ReplaceAllString(row, "docs://documents/{ID}"))
		}
	}
	return out
}
