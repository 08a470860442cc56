package main

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

//go:embed templates static
var webFiles embed.FS

// sessionUser is the session key holding the signed-in user's ID.
const sessionUser = "user_id"

// pages serves the host app's server-rendered pages.
type pages struct {
	a    *app
	tmpl map[string]*template.Template
}

func newPages(a *app) (*pages, error) {
	p := &pages{a: a, tmpl: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"date":     func(t time.Time) string { return t.Format("Jan 2, 2006") },
		"datetime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"kb": func(s string) string {
			return strconv.FormatFloat(float64(len(s))/1024, 'f', 1, 64) + " KB"
		},
		"docURL": docURLPath,
	}
	pageFiles, err := fs.Glob(webFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, f := range pageFiles {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(webFiles, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", f, err)
		}
		p.tmpl[name] = t
	}
	return p, nil
}

func (p *pages) mount(mux *http.ServeMux) {
	static, _ := fs.Sub(webFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", p.home)
	mux.HandleFunc("GET /login", p.loginForm)
	mux.HandleFunc("POST /login", p.login)
	mux.HandleFunc("POST /logout", p.logout)
	mux.Handle("GET /documents", p.signedIn(p.documentList))
	mux.Handle("POST /documents", p.signedIn(p.documentCreate))
	mux.Handle("GET /documents/{id}", p.signedIn(p.documentView))
	mux.Handle("POST /documents/{id}/delete", p.signedIn(p.documentDelete))
	mux.Handle("GET /assistant", p.signedIn(p.assistantPage))
	mux.Handle("POST /assistant", p.signedIn(p.assistantAsk))
	mux.Handle("POST /api/assistant", p.signedIn(p.assistantAPI))
	mux.Handle("GET /keys", p.signedIn(p.keysPage))
	mux.Handle("POST /keys", p.signedIn(p.keyCreate))
	mux.Handle("POST /keys/{id}/rotate", p.signedIn(p.keyRotate))
	mux.Handle("POST /keys/{id}/revoke", p.signedIn(p.keyRevoke))
	mux.Handle("GET /activity", p.signedIn(p.activity))
}

// userKey is the request context key of the signed-in user.
type userKey struct{}

// signedIn runs h for a signed-in, active user (in the request context);
// others are sent to the login page. A user deactivated since signing in is
// signed out.
func (p *pages) signedIn(h func(http.ResponseWriter, *http.Request, user)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := p.a.sessions.GetString(r.Context(), sessionUser)
		if id == "" {
			p.toLogin(w, r)
			return
		}
		u, err := p.a.users.get(r.Context(), id)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !u.Active) {
			_ = p.a.sessions.Destroy(r.Context())
			p.toLogin(w, r)
			return
		}
		if err != nil {
			p.fail(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)), u)
	})
}

func (p *pages) toLogin(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		http.Error(w, `{"error":"unauthorized","message":"sign in first"}`, http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sessionUserID is the keys API's user function: the session's active user.
func (p *pages) sessionUserID(r *http.Request) (string, error) {
	id := p.a.sessions.GetString(r.Context(), sessionUser)
	if id == "" {
		return "", keyadmin.ErrNotSignedIn
	}
	active, err := p.a.users.UserActive(r.Context(), id)
	if err != nil {
		return "", err
	}
	if !active {
		return "", keyadmin.ErrNotSignedIn
	}
	return id, nil
}

// view is what every page template gets.
type view struct {
	Title string
	User  *user
	Flash string
	Error string
	Data  any
}

// render writes a page. It renders into a buffer first, so a template error
// becomes a clean 500 instead of half a page.
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	if u, ok := r.Context().Value(userKey{}).(user); ok {
		v.User = &u
		if v.Flash == "" {
			v.Flash = p.a.sessions.PopString(r.Context(), "flash")
		}
	}
	var buf bytes.Buffer
	if err := p.tmpl[name].Execute(&buf, v); err != nil {
		p.a.cfg.log.Error("docsearch: render", slog.String("page", name), slog.String("error", err.Error()))
		http.Error(w, "Something went wrong.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store") // pages can hold documents and new keys
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail logs err and answers a generic page: internal errors never reach the
// browser.
func (p *pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.a.cfg.log.Error("docsearch: request failed", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	http.Error(w, "Something went wrong. Try again later.", http.StatusInternalServerError)
}

func (p *pages) redirect(w http.ResponseWriter, r *http.Request, to, flash string) {
	if flash != "" {
		p.a.sessions.Put(r.Context(), "flash", flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (p *pages) home(w http.ResponseWriter, r *http.Request) {
	if p.a.sessions.GetString(r.Context(), sessionUser) == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/assistant", http.StatusSeeOther)
}

// Login and logout (step 1).

func (p *pages) loginForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "login", view{Title: "Sign in"})
}

func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	email, password := r.PostFormValue("email"), r.PostFormValue("password")
	u, err := p.a.users.login(r.Context(), email, password)
	if errors.Is(err, errBadLogin) || errors.Is(err, errInactive) {
		p.render(w, r, http.StatusUnauthorized, "login", view{Title: "Sign in", Error: err.Error() + ".", Data: email})
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	// A new session token on sign-in: a token planted before it is useless.
	if err := p.a.sessions.RenewToken(r.Context()); err != nil {
		p.fail(w, r, err)
		return
	}
	p.a.sessions.Put(r.Context(), sessionUser, u.ID)
	http.Redirect(w, r, "/assistant", http.StatusSeeOther)
}

func (p *pages) logout(w http.ResponseWriter, r *http.Request) {
	if err := p.a.sessions.Destroy(r.Context()); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// Documents.

func (p *pages) documentList(w http.ResponseWriter, r *http.Request, u user) {
	docs, err := p.a.docs.list(r.Context(), u.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "documents", view{Title: "Documents", Data: docs})
}

func (p *pages) documentCreate(w http.ResponseWriter, r *http.Request, u user) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes+64<<10)
	if err := r.ParseMultipartForm(maxBodyBytes + 64<<10); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		p.documentFormError(w, r, u, "The upload is too large or malformed (at most 100 KiB).")
		return
	}
	title, body := r.FormValue("title"), r.FormValue("body")
	if f, hdr, err := r.FormFile("file"); err == nil {
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxBodyBytes+1))
		if err != nil {
			p.fail(w, r, err)
			return
		}
		if strings.TrimSpace(body) == "" {
			body = string(b)
		}
		if strings.TrimSpace(title) == "" {
			title = strings.TrimSuffix(strings.TrimSuffix(hdr.Filename, ".md"), ".txt")
		}
	}
	doc, err := p.a.docs.create(r.Context(), u.ID, title, body)
	var fe fieldError
	if errors.As(err, &fe) {
		p.documentFormError(w, r, u, "The "+fe.Error()+".")
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.redirect(w, r, "/documents/"+strconv.FormatInt(doc.ID, 10), "Document added.")
}

func (p *pages) documentFormError(w http.ResponseWriter, r *http.Request, u user, msg string) {
	docs, err := p.a.docs.list(r.Context(), u.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusBadRequest, "documents", view{Title: "Documents", Error: msg, Data: docs})
}

func docURLPath(id int64) string { return "/documents/" + strconv.FormatInt(id, 10) }

// documentID reads {id}; a malformed ID is answered like a missing one.
func documentID(r *http.Request) int64 {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return -1
	}
	return id
}

func (p *pages) documentView(w http.ResponseWriter, r *http.Request, u user) {
	doc, err := p.a.docs.get(r.Context(), u.ID, documentID(r))
	if errors.Is(err, errNoDocument) {
		p.notFound(w, r)
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "document", view{Title: doc.Title, Data: doc})
}

func (p *pages) documentDelete(w http.ResponseWriter, r *http.Request, u user) {
	err := p.a.docs.delete(r.Context(), u.ID, documentID(r))
	if errors.Is(err, errNoDocument) {
		p.notFound(w, r)
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.redirect(w, r, "/documents", "Document deleted.")
}

// notFound is the one answer for a document the user does not own, whether
// someone else does or nobody.
func (p *pages) notFound(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusNotFound, "notfound", view{Title: "Not found"})
}
