// Package keyadmin is key administration for the host application: issue,
// list, rotate and revoke the API keys of its users, import keys of a
// hand-rolled scheme, announce keys about to expire, and serve the same to
// signed-in users over HTTP (Handler). The request path, package mcpauth,
// never needs it; a Guard and a Manager share only the store, the key
// format (package apikey) and their configuration:
//
//	import (
//		"github.com/mcpauth/mcpauth/mcpauth"
//		"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
//	)
//
//	guard, err := mcpauth.New(keys, &mcpauth.Options{Peppers: peppers, Notifier: n, Audit: sink})
//	admin, err := keyadmin.New(keys, &keyadmin.Options{
//		Peppers:  peppers,     // the same, or the Guard cannot verify the keys
//		Notifier: n,           // the Guard's hears key.new_ip, this one the rest
//		Audit:    sink,        // key changes and requests in one trail
//		OnChange: guard.Forget, // changes reach this process's Guard at once
//	})
//	defer admin.Close(ctx)
//
// Defaults are least privilege: at most 25 active keys per user, 90-day
// lifetime, no admin or wildcard scope without a ScopeCeiling that grants
// it, and a keys API on which users set only name, scopes, expiry and
// allowed addresses.
//
// It imports no MCP SDK, no driver, and not package mcpauth.
package keyadmin
