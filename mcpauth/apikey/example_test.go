package apikey_test

import (
	"fmt"
	"regexp"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
)

// Check a string with the key format's checksum, without any store.
func ExampleParseKey() {
	_, err := apikey.ParseKey("mcp_0000000000000000000000000000000000000000aa", "")
	fmt.Println(err)
	// Output:
	// mcpauth: malformed key: bad checksum
}

// The expression secret scanners use to find leaked keys.
func ExampleScannerRegexp() {
	fmt.Println(apikey.ScannerRegexp(""))
	re := regexp.MustCompile(apikey.ScannerRegexp("acme"))
	fmt.Println(re.MatchString("token=acme_0000000000000000000000000000000000000000aa"))
	// Output:
	// \bmcp_[0-9A-Za-z]{42}\b
	// true
}
