#!/usr/bin/env bash
# The MCP conformance suite (@modelcontextprotocol/conformance, Node 22)
# against the go-sdk's conformance everything-server, bare and behind
# mcpauth's Guard.Require (mcpauth/internal/conformance/protected), in
# stateless and stateful mode. Prints both pass sets of each mode and fails
# if they differ: mcpauth must change nothing a permitted client sees.
# See docs/conformance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/node.sh

work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "== conformance: building everything-server ($(go list -m -f '{{.Path}} {{.Version}}' github.com/modelcontextprotocol/go-sdk)) and the protected front"
go build -o "$work/everything-server" github.com/modelcontextprotocol/go-sdk/conformance/everything-server
go build -o "$work/protected" ./mcpauth/internal/conformance/protected

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

wait_http() { # url
	for _ in $(seq 100); do
		if curl -s -o /dev/null "$1"; then return 0; fi
		sleep 0.1
	done
	echo "conformance: $1 did not answer" >&2
	return 1
}

# passes DIR: one "scenario check-id" line per SUCCESS check, sorted.
passes() {
	node -e '
const fs = require("fs"), path = require("path");
const dir = process.argv[1], out = [];
for (const d of fs.readdirSync(dir)) {
  const scenario = d.replace(/^server-/, "").replace(/-\d{4}-\d\d-\d\dT[\d-]+Z$/, "");
  for (const c of JSON.parse(fs.readFileSync(path.join(dir, d, "checks.json"), "utf8")))
    if (c.status === "SUCCESS") out.push(c.id === scenario ? scenario : scenario + "/" + c.id);
}
console.log(out.sort().join("\n"));' "$1"
}

# suite NAME URL: runs the suite, leaves the pass set in $work/NAME.pass.
suite() {
	local name="$1" url="$2"
	"$MCPAUTH_CONFORMANCE_BIN" server --url "$url" -o "$work/$name" >"$work/$name.log" 2>&1 || true
	if [[ ! -d "$work/$name" ]]; then
		cat "$work/$name.log"
		echo "conformance: $name produced no results" >&2
		return 1
	fi
	passes "$work/$name" >"$work/$name.pass"
	grep -E '^Total:' "$work/$name.log" | sed "s/^/   $name: /"
}

status=0
for mode in stateless stateful; do
	stateless=true
	[[ $mode == stateful ]] && stateless=false
	start=$SECONDS

	port="$(free_port)"
	"$work/everything-server" -http "127.0.0.1:$port" -stateless="$stateless" 2>"$work/bare-$mode.server.log" &
	pids+=($!)
	wait_http "http://127.0.0.1:$port/"
	suite "bare-$mode" "http://127.0.0.1:$port/"
	kill "${pids[-1]}"

	"$work/protected" -server "$work/everything-server" -stateless="$stateless" >"$work/protected-$mode.out" 2>"$work/protected-$mode.server.log" &
	pids+=($!)
	for _ in $(seq 100); do grep -q '^URL ' "$work/protected-$mode.out" && break; sleep 0.1; done
	url="$(sed -n 's/^URL //p' "$work/protected-$mode.out")"
	if [[ -z $url ]]; then
		cat "$work/protected-$mode.server.log" >&2
		echo "conformance: protected server did not start" >&2
		exit 1
	fi
	suite "protected-$mode" "$url"
	kill "${pids[-1]}"

	bare="$work/bare-$mode.pass" prot="$work/protected-$mode.pass"
	echo "== conformance $mode: bare $(wc -l <"$bare") passed, protected $(wc -l <"$prot") passed ($((SECONDS - start))s)"
	echo "-- bare $mode pass set:"
	sed 's/^/   /' "$bare"
	echo "-- protected $mode pass set:"
	sed 's/^/   /' "$prot"
	if [[ ! -s $bare ]]; then
		echo "FAIL: the bare everything-server passed nothing ($mode): the suite did not run" >&2
		status=1
	elif ! diff -u --label "bare-$mode" --label "protected-$mode" "$bare" "$prot"; then
		echo "FAIL: pass sets differ ($mode); - only bare, + only protected. Protected server log:" >&2
		tail -20 "$work/protected-$mode.server.log" >&2
		status=1
	else
		echo "== conformance $mode: identical pass sets"
	fi
done
exit $status
