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
    out="" rc=0
    for attempt in 1 2; do
      rc=0
      out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1) || rc=$?
      if ((rc == 0)); then
        break
      fi
      # Go's fuzzing coordinator can report "context deadline exceeded" when
      # the time is up while a worker is busy (a toolchain flake on a loaded
      # machine, with no failing input): run it once more. A real failure
      # names its input and is not retried.
      if [[ $attempt == 1 && "$out" == *"context deadline exceeded"* && "$out" != *"Failing input written"* ]]; then
        echo "   (fuzzing engine timed out without a failing input; running $target again)"
        continue
      fi
      break
    done
    if ((rc != 0)); then
      echo "$out" | tail -40
      echo "== $target failed; the failing input is under testdata/fuzz/$target of its package"
      exit 1
    fi
    echo "$out" | tail -2
    total=$((total + 1))
  done
done
echo "== fuzzed $total targets for $FUZZTIME each"
