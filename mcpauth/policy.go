package mcpauth

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/mcpauth/mcpauth/mcpauth/internal/rpcpeek"
	"github.com/mcpauth/mcpauth/scope"
)

// authorize checks every message of the request against the policy; a
// refusal refuses the whole request (a batch is all or nothing). The
// ScopeError is the first refused message's, listing every scope any
// refused message of the request needs, so that a client steps up once
// (MCP's scope accumulation); if some message is blocked, that one is the
// refusal, with no scopes: no scope would allow the request.
func (g *Guard) authorize(x *exchange) error {
	var refused *ScopeError
	for i := range x.msgs {
		m := &x.msgs[i]
		if m.Kind == rpcpeek.Response {
			continue
		}
		sm := messageOf(m)
		if m.Method == scope.MethodSubscriptionsListen {
			uris, err := subscriptionURIs(m.Params)
			if err != nil {
				return ErrInvalidRequest
			}
			sm.Subscriptions = uris
		}
		v, target := g.opts.Policy.DecideMessage(sm, x.entry.scopes)
		g.observePolicy(m.Method, v.Allowed)
		if v.Allowed {
			continue
		}
		if v.Blocked || len(v.Required) == 0 {
			return &ScopeError{ID: cloneID(m.ID), Method: strings.Clone(m.Method), Target: strings.Clone(target), Blocked: v.Blocked, Reason: v.Reason}
		}
		if refused == nil {
			refused = &ScopeError{ID: cloneID(m.ID), Method: strings.Clone(m.Method), Target: strings.Clone(target), Reason: v.Reason}
		}
		for _, s := range v.Required {
			if s := s.String(); !slices.Contains(refused.Required, s) {
				refused.Required = append(refused.Required, s)
			}
		}
	}
	if refused != nil {
		return refused
	}
	return nil
}

// subscriptionURIs returns every string under any key that spells
// "resourceSubscriptions" in any letter case, at any depth of params. Taking
// all of them (not the one a given decoder would pick) means no JSON
// decoder can subscribe to a URI that was not checked.
func subscriptionURIs(params []byte) ([]string, error) {
	if len(params) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	var uris []string
	var walk func(collect bool) error
	walk = func(collect bool) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return err
					}
					key, _ := kt.(string)
					if err := walk(collect || strings.EqualFold(key, "resourceSubscriptions")); err != nil {
						return err
					}
				}
			case '[':
				for dec.More() {
					if err := walk(collect); err != nil {
						return err
					}
				}
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			if collect {
				uris = append(uris, t)
			}
		}
		return nil
	}
	if err := walk(false); err != nil {
		return nil, err
	}
	return uris, nil
}

// messageOf is what the policy reads of a message (scope's one operation
// model; the SDK adapters fill the same struct from their typed params).
// Its strings alias the body.
func messageOf(m *rpcpeek.Message) scope.Message {
	return scope.Message{Method: m.Method, Name: m.Name, URI: m.URI, RefType: m.RefType, RefName: m.RefName, RefURI: m.RefURI}
}

func targetOf(m *rpcpeek.Message) string { return messageOf(m).Target() }
