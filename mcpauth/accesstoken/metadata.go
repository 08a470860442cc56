package accesstoken

// ResourceMetadata is OAuth 2.0 Protected Resource Metadata (RFC 9728):
// what an MCP client fetches to learn which authorization servers issue
// tokens for this server and which scopes it knows.
type ResourceMetadata struct {
	// Resource is this server's canonical URI: the MCP endpoint's URL
	// (https, or http on a loopback host), without fragment or query. It is
	// the audience tokens must be issued for (RFC 8707). Required.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuer identifiers of the authorization
	// servers whose tokens are accepted. At least one.
	AuthorizationServers []string `json:"authorization_servers"`
	// ScopesSupported are the scopes clients may request for this resource.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported is always ["header"]: tokens are read only
	// from the Authorization header, never from the URL or the body.
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// ResourceName is a human-readable name of the server.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is a URL of documentation for developers.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
}

// WellKnownPath is the well-known path of protected resource
// metadata (RFC 9728 §3).
const WellKnownPath = "/.well-known/oauth-protected-resource"
