package scope_test

import (
	"fmt"
	"strings"

	"github.com/mcpauth/mcpauth/scope"
)

func ExampleSet_Allows() {
	granted, err := scope.ParseSet([]string{"documents:read", "write"})
	if err != nil {
		panic(err)
	}
	for _, need := range []string{"documents:read", "notes:write", "documents:delete", "read"} {
		fmt.Println(need, granted.Allows(scope.MustParse(need)))
	}
	// Output:
	// documents:read true
	// notes:write true
	// documents:delete false
	// read false
}

func ExampleLoadPolicy() {
	policy, err := scope.LoadPolicy(strings.NewReader(`{
	  "tools": [
	    {"match": "search_documents", "scopes": ["documents:read"]},
	    {"match": "delete_document",  "scopes": ["documents:delete"]}
	  ],
	  "unlisted_tools": {"scopes": ["admin"]}
	}`))
	if err != nil {
		panic(err)
	}
	readOnly := scope.MustParseSet("documents:read")

	v := policy.Decide(scope.Operation{Method: "tools/call", Name: "search_documents"}, readOnly)
	fmt.Println(v.Allowed)

	v = policy.Decide(scope.Operation{Method: "tools/call", Name: "delete_document"}, readOnly)
	fmt.Println(v.Allowed, v.Scope())
	fmt.Println(v.Reason)

	v = policy.Decide(scope.Operation{Method: "resources/read", URI: "file:///srv/app/.env"}, scope.MustParseSet("admin"))
	fmt.Println(v.Blocked)

	fmt.Println(policy.Visible(scope.KindTool, "delete_document", readOnly))
	// Output:
	// true
	// false documents:delete
	// tool "delete_document" requires scope documents:delete
	// true
	// false
}

func ExampleLoadPolicy_invalid() {
	_, err := scope.LoadPolicy(strings.NewReader(`{"tools": [{"match": "a"}, {"match": "b"}, {"match": "c", "scopes": ["docs::read"]}]}`))
	fmt.Println(err)
	// Output:
	// mcpauth/scope: invalid policy: tools[2].scopes[0]: invalid scope "docs::read": more than one ":"
}
