//go:build !race

package rpcpeek

const raceEnabled = false
