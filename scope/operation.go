package scope

// MethodSubscriptionsListen (SEP-2575) subscribes to resources by URI in
// params.notifications.resourceSubscriptions instead of resources/subscribe.
const MethodSubscriptionsListen = "subscriptions/listen"

// Message is what the policy reads of one MCP request: its method and the
// few params fields that name its target. The HTTP middleware fills it from
// the raw body, the SDK adapters from the SDK's typed params; Operations
// turns it into the operations to decide, so that all of them agree.
type Message struct {
	Method string
	// Name is params.name (tools/call, prompts/get).
	Name string
	// URI is params.uri (resources/read, subscribe, unsubscribe).
	URI string
	// RefType, RefName and RefURI are params.ref (completion/complete).
	RefType, RefName, RefURI string
	// Subscriptions are the URIs of subscriptions/listen
	// (params.notifications.resourceSubscriptions).
	Subscriptions []string
}

// Operation returns the operation a message asks for. A completion ref
// points at its URI for "ref/resource" (or when it has a URI and no name),
// otherwise at its name.
func (m Message) Operation() Operation {
	op := Operation{Method: m.Method, Name: m.Name, URI: m.URI, RefType: m.RefType}
	if m.RefType == RefResource || (m.RefURI != "" && m.RefName == "") {
		op.Ref = m.RefURI
	} else {
		op.Ref = m.RefName
	}
	return op
}

// Target names what the message acts on, for errors and audit: the tool or
// prompt name, the resource URI, or the completion ref.
func (m Message) Target() string {
	switch {
	case m.Name != "":
		return m.Name
	case m.URI != "":
		return m.URI
	case m.RefName != "":
		return m.RefName
	default:
		return m.RefURI
	}
}

// DecideMessage decides every operation of a message: one for most
// methods, and for subscriptions/listen a resources/subscribe of each URI
// (none subscribes to an unchecked URI). It returns the first refusal, with
// the target it refused, or an allowed Verdict.
func (p *Policy) DecideMessage(m Message, granted Set) (v Verdict, target string) {
	if m.Method == MethodSubscriptionsListen {
		for _, uri := range m.Subscriptions {
			if v := p.Decide(Operation{Method: MethodResourcesSubscribe, URI: uri}, granted); !v.Allowed {
				return v, uri
			}
		}
		return Verdict{Allowed: true}, ""
	}
	return p.Decide(m.Operation(), granted), m.Target()
}
