#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time on top of its seed
# corpus (FUZZTIME per target, default 10s). Targets are found with
# `go test -list`, so a new Fuzz function is fuzzed without editing this file.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
total=0
for pkg in $(go list github.com/mcpauth/mcpauth/...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for target in $targets; do
    echo "-- $pkg $target ($FUZZTIME)"
    if ! out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then
      echo "$out" | tail -40
      echo "== $target failed; the failing input is under testdata/fuzz/$target of its package"
      exit 1
    fi
    echo "$out" | tail -2
    total=$((total + 1))
  done
done
echo "== fuzzed $total targets for $FUZZTIME each"
