package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/scope"
)

// Scopes a key may carry, the fixed list of the API keys page.
const (
	scopeRead   = "documents:read"
	scopeWrite  = "documents:write"
	scopeDelete = "documents:delete"
)

var allScopes = []string{scopeRead, scopeWrite, scopeDelete}

// policy says which scope each tool and resource needs. Tools and resources
// not listed are refused (the policy's default), and the default blocklist
// (secret files, credentials) is on.
var policy = func() *scope.Policy {
	p, err := scope.LoadPolicy(strings.NewReader(`{
	  "tools": [
	    {"match": "search_documents", "scopes": ["documents:read"]},
	    {"match": "get_document",     "scopes": ["documents:read"]},
	    {"match": "create_document",  "scopes": ["documents:write"]},
	    {"match": "delete_document",  "scopes": ["documents:delete"]}
	  ],
	  "resources": [
	    {"match": "docs://documents/*", "scopes": ["documents:read"]}
	  ]
	}`))
	if err != nil {
		panic(err) // a constant policy: a mistake here is a programming error
	}
	return p
}()

// docURI is the resource URI of a document.
func docURI(id int64) string { return "docs://documents/" + strconv.FormatInt(id, 10) }

// mcpServer is the MCP side of the app: four tools and a resource template
// over the documents store, each scoped by the principal's user ID.
type mcpServer struct {
	docs *documents
	// runs counts the tool and resource handlers that actually ran, by
	// name: what the attacker's tests check stayed 0.
	mu   sync.Mutex
	runs map[string]int
}

func newMCPServer(docs *documents) *mcpServer {
	return &mcpServer{docs: docs, runs: map[string]int{}}
}

// handler is the streamable HTTP handler to mount behind guard.Require and
// gosdk.Bridge.
func (s *mcpServer) handler() http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "docsearch", Version: "1.0.0"}, &mcp.ServerOptions{
		Instructions: "Search and read the signed-in user's documents. Cite documents by title and upload date.",
	})
	// The second line of defence, and per-key tools/list: a read-only key
	// does not even see create_document or delete_document.
	server.AddReceivingMiddleware(gosdk.Middleware(policy))
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(server, &mcp.Tool{Name: "search_documents", Annotations: readOnly,
		Description: "Full-text search of the user's documents. Returns the best matches with a snippet each, best first."}, s.search)
	mcp.AddTool(server, &mcp.Tool{Name: "get_document", Annotations: readOnly,
		Description: "Returns one of the user's documents in full, by ID."}, s.get)
	mcp.AddTool(server, &mcp.Tool{Name: "create_document",
		Description: "Stores a new text or Markdown document for the user."}, s.create)
	mcp.AddTool(server, &mcp.Tool{Name: "delete_document", Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)},
		Description: "Deletes one of the user's documents, by ID."}, s.delete)
	server.AddResourceTemplate(&mcp.ResourceTemplate{
		Name: "document", URITemplate: "docs://documents/{id}", MIMEType: "text/markdown",
		Description: "One of the user's documents, as Markdown.",
	}, s.readResource)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
}

func ptr[T any](v T) *T { return &v }

func (s *mcpServer) ran(name string) {
	s.mu.Lock()
	s.runs[name]++
	s.mu.Unlock()
}

// runCount is how many times a tool or resource handler ran.
func (s *mcpServer) runCount(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[name]
}

// owner returns the user the request acts for: the API key's, never
// anything the model sent.
func owner(req *mcp.CallToolRequest) (string, error) {
	p, ok := gosdk.Principal(req.Extra)
	if !ok || p.UserID == "" {
		return "", errors.New("not authenticated")
	}
	return p.UserID, nil
}

type searchIn struct {
	Query string `json:"query" jsonschema:"words or a question to look for"`
	Limit int    `json:"limit,omitempty" jsonschema:"how many results, 1 to 10 (default 5)"`
}

type searchHit struct {
	ID         int64     `json:"id"`
	Title      string    `json:"title"`
	UploadedAt time.Time `json:"uploaded_at"`
	Snippet    string    `json:"snippet"`
	URI        string    `json:"uri"`
}

type searchOut struct {
	Results []searchHit `json:"results"`
}

func (s *mcpServer) search(ctx context.Context, req *mcp.CallToolRequest, in searchIn) (*mcp.CallToolResult, searchOut, error) {
	s.ran("search_documents")
	userID, err := owner(req)
	if err != nil {
		return nil, searchOut{}, err
	}
	if strings.TrimSpace(in.Query) == "" {
		return nil, searchOut{}, errors.New("query is empty")
	}
	if in.Limit == 0 {
		in.Limit = 5
	}
	if in.Limit < 1 || in.Limit > maxHits {
		return nil, searchOut{}, fmt.Errorf("limit must be between 1 and %d", maxHits)
	}
	hits, err := s.docs.search(ctx, userID, in.Query, in.Limit)
	if err != nil {
		return nil, searchOut{}, errors.New("search failed")
	}
	out := searchOut{Results: []searchHit{}}
	for _, h := range hits {
		out.Results = append(out.Results, searchHit{ID: h.ID, Title: h.Title, UploadedAt: h.CreatedAt, Snippet: h.Snippet, URI: docURI(h.ID)})
	}
	return nil, out, nil
}

type idIn struct {
	ID int64 `json:"id" jsonschema:"the document's ID"`
}

type documentOut struct {
	ID         int64     `json:"id"`
	Title      string    `json:"title"`
	UploadedAt time.Time `json:"uploaded_at"`
	Body       string    `json:"body,omitempty"`
	URI        string    `json:"uri"`
}

// notFound is the one error for a document the user does not own: another
// user's ID reads exactly like an ID that was never issued.
func notFound(id int64) error { return fmt.Errorf("document %d not found", id) }

func (s *mcpServer) get(ctx context.Context, req *mcp.CallToolRequest, in idIn) (*mcp.CallToolResult, documentOut, error) {
	s.ran("get_document")
	userID, err := owner(req)
	if err != nil {
		return nil, documentOut{}, err
	}
	doc, err := s.docs.get(ctx, userID, in.ID)
	if errors.Is(err, errNoDocument) {
		return nil, documentOut{}, notFound(in.ID)
	}
	if err != nil {
		return nil, documentOut{}, errors.New("reading the document failed")
	}
	return nil, documentOut{ID: doc.ID, Title: doc.Title, UploadedAt: doc.CreatedAt, Body: doc.Body, URI: docURI(doc.ID)}, nil
}

type createIn struct {
	Title string `json:"title" jsonschema:"the document's title"`
	Body  string `json:"body" jsonschema:"the document's text, plain or Markdown"`
}

func (s *mcpServer) create(ctx context.Context, req *mcp.CallToolRequest, in createIn) (*mcp.CallToolResult, documentOut, error) {
	s.ran("create_document")
	userID, err := owner(req)
	if err != nil {
		return nil, documentOut{}, err
	}
	doc, err := s.docs.create(ctx, userID, in.Title, in.Body)
	var fe fieldError
	if errors.As(err, &fe) {
		return nil, documentOut{}, fe
	}
	if err != nil {
		return nil, documentOut{}, errors.New("storing the document failed")
	}
	return nil, documentOut{ID: doc.ID, Title: doc.Title, UploadedAt: doc.CreatedAt, URI: docURI(doc.ID)}, nil
}

type deleteOut struct {
	Deleted int64 `json:"deleted"`
}

func (s *mcpServer) delete(ctx context.Context, req *mcp.CallToolRequest, in idIn) (*mcp.CallToolResult, deleteOut, error) {
	s.ran("delete_document")
	userID, err := owner(req)
	if err != nil {
		return nil, deleteOut{}, err
	}
	err = s.docs.delete(ctx, userID, in.ID)
	if errors.Is(err, errNoDocument) {
		return nil, deleteOut{}, notFound(in.ID)
	}
	if err != nil {
		return nil, deleteOut{}, errors.New("deleting the document failed")
	}
	return nil, deleteOut{Deleted: in.ID}, nil
}

// readResource serves docs://documents/{id}. An ID the user does not own
// answers "resource not found", as a malformed or unknown one does.
func (s *mcpServer) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	s.ran("docs://documents/{id}")
	uri := req.Params.URI
	p, ok := gosdk.Principal(req.Extra)
	if !ok || p.UserID == "" {
		return nil, errors.New("not authenticated")
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(uri, "docs://documents/"), 10, 64)
	if err != nil || !strings.HasPrefix(uri, "docs://documents/") {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	doc, err := s.docs.get(ctx, p.UserID, id)
	if errors.Is(err, errNoDocument) {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	if err != nil {
		return nil, errors.New("reading the document failed")
	}
	text := "# " + doc.Title + "\n\nUploaded " + doc.CreatedAt.Format("January 2, 2006") + "\n\n" + doc.Body
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: docURI(doc.ID), MIMEType: "text/markdown", Text: text}}}, nil
}
