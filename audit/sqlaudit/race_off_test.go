//go:build !race

package sqlaudit_test

const raceEnabled = false
