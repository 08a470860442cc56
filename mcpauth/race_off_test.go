//go:build !race

package mcpauth_test

const raceEnabled = false
