package main

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"
)

// The AI Assistant page (steps 2, 4, 5 and 10 of the seed's flow): a form
// whose answer is rendered on the server, and the seed's JSON endpoint.

type assistantView struct {
	Question string
	Reply    *reply
}

func (p *pages) assistantPage(w http.ResponseWriter, r *http.Request, _ user) {
	p.render(w, r, http.StatusOK, "assistant", view{Title: "AI Assistant", Data: assistantView{}})
}

func (p *pages) assistantAsk(w http.ResponseWriter, r *http.Request, u user) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	q := r.PostFormValue("question")
	rep, err := p.a.assistant.ask(r.Context(), u.ID, q)
	if err != nil {
		p.render(w, r, http.StatusOK, "assistant", view{Title: "AI Assistant", Error: userMessage(err), Data: assistantView{Question: q}})
		return
	}
	p.render(w, r, http.StatusOK, "assistant", view{Title: "AI Assistant", Data: assistantView{Question: q, Reply: &rep}})
}

// userMessage is the text of a userError, a generic sentence for anything
// else: no stack trace, no internal error text, no key ever reaches the page.
func userMessage(err error) string {
	var ue userError
	if errors.As(err, &ue) {
		return ue.msg
	}
	return "Something went wrong. Try again later."
}

type askRequest struct {
	Question string `json:"question"`
}

type askSource struct {
	N          int       `json:"n"`
	ID         int64     `json:"id"`
	Title      string    `json:"title"`
	UploadedAt time.Time `json:"uploaded_at"`
	URL        string    `json:"url"`
}

type askResponse struct {
	Answer   string      `json:"answer"`
	Sources  []askSource `json:"sources"`
	Answerer string      `json:"answerer"`
}

// assistantAPI is POST /api/assistant {"question": "..."}: the seed's
// /api/ai/query, for a front end of your own.
func (p *pages) assistantAPI(w http.ResponseWriter, r *http.Request, u user) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "unsupported_media_type", "message": "send Content-Type: application/json"})
		return
	}
	var req askRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Question) == "" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "field": "question", "message": "the body must be {\"question\": \"...\"}"})
		return
	}
	rep, err := p.a.assistant.ask(r.Context(), u.ID, req.Question)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "assistant_failed", "message": userMessage(err)})
		return
	}
	out := askResponse{Answer: rep.Text, Sources: []askSource{}, Answerer: rep.Answerer}
	for _, s := range rep.Cited {
		out.Sources = append(out.Sources, askSource{N: s.N, ID: s.ID, Title: s.Title, UploadedAt: s.UploadedAt, URL: docURLPath(s.ID)})
	}
	_ = json.NewEncoder(w).Encode(out)
}
