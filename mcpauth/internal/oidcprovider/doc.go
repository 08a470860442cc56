// Package oidcprovider tests mcpauth's OAuth support against a real OpenID
// Provider started by the test: one built with github.com/zitadel/oidc/v3's
// op package (OpenID certified), issuing JWT access tokens by client
// credentials and by authorization code with PKCE, and opaque tokens that
// the resource server introspects; the official go-sdk client obtains its
// token through its own OAuth support. It is a module of its own so that
// neither the core nor the oauth module depends on the provider.
package oidcprovider
