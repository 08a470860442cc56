#!/usr/bin/env bash
# The MCP conformance suite (@modelcontextprotocol/conformance, Node 22)
# against
#   - the go-sdk's conformance everything-server, bare, behind mcpauth's
#     Guard.Require (mcpauth/internal/conformance/protected), and behind
#     "mcpauth gateway --upstream" (HTTP), in stateless and stateful mode;
#   - the reference everything server (@modelcontextprotocol/server-everything,
#     run by node), bare over its own streamable HTTP (stateful) and over
#     stdio behind "mcpauth gateway --stdio".
# Prints every pass set and fails if one differs from its bare server's:
# mcpauth must change nothing a permitted client sees. The suite cannot send
# an Authorization header, so cmd/mcpauth/internal/conformance/inject adds
# the key in front of the gateway. See docs/conformance.md.
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
go build -o "$work/mcpauth" ./cmd/mcpauth
go build -o "$work/inject" ./cmd/mcpauth/internal/conformance/inject

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

# compare LABEL BARE OTHER LOG [EXTRA...]: prints both pass sets, fails
# unless OTHER passed exactly what BARE passed plus the EXTRA checks (ones
# the gateway passes for a server that does not: named, never guessed).
status=0
compare() {
	local label="$1" bname="$2" oname="$3" bare="$work/$2.pass" other="$work/$3.pass" log="$4"
	shift 4
	if (($#)); then
		printf '%s\n' "$@" | sort -u - "$bare" >"$bare.expected"
		bare="$bare.expected"
		echo "   (expected as well, the gateway's own: $*)"
	fi
	echo "== conformance $label: $bname $(wc -l <"$work/$bname.pass") passed, $oname $(wc -l <"$other") passed"
	echo "-- $bname pass set:"
	sed 's/^/   /' "$work/$bname.pass"
	echo "-- $oname pass set:"
	sed 's/^/   /' "$other"
	if [[ ! -s "$work/$bname.pass" ]]; then
		echo "FAIL: $bname passed nothing ($label): the suite did not run" >&2
		status=1
	elif ! diff -u --label "$bname${*:+ + expected}" --label "$oname" "$bare" "$other"; then
		echo "FAIL: pass sets differ ($label); - only $bname, + only $oname. Server log:" >&2
		tail -20 "$log" >&2
		status=1
	else
		echo "== conformance $label: identical pass sets${*:+ (with the expected extra)}"
	fi
}

# url_from FILE: waits for a "URL <url>" line in FILE and prints the URL.
url_from() {
	for _ in $(seq 100); do grep -q '^URL ' "$1" 2>/dev/null && break; sleep 0.1; done
	sed -n 's/^URL //p' "$1"
}

# The gateway's database, key and policy: the protected fixture's policy
# (every tool, resource, prompt and completion, each kind with its scope).
export MCPAUTH_PEPPER="1:conformance-pepper-$(node -e 'console.log(require("crypto").randomBytes(16).toString("hex"))')"
gwdb="$work/gateway.db"
"$work/mcpauth" --db "$gwdb" migrate >/dev/null
MCPAUTH_CONFORMANCE_KEY="$("$work/mcpauth" --db "$gwdb" --json keys create --user conformance --name "conformance suite" \
	--scope conformance:tools --scope conformance:resources --scope conformance:prompts |
	node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).raw_key))')"
export MCPAUTH_CONFORMANCE_KEY
cat >"$work/policy.json" <<'JSON'
{"tools": [{"match": "*", "scopes": ["conformance:tools"]}],
 "resources": [{"match": "*", "scopes": ["conformance:resources"]}],
 "prompts": [{"match": "*", "scopes": ["conformance:prompts"]}],
 "completions": [{"match": "*", "scopes": ["conformance:prompts"]}]}
JSON

# gateway NAME ARGS...: starts the gateway with ARGS and the inject front,
# runs the suite through them, leaves the pass set in $work/NAME.pass.
gateway() {
	local name="$1" port
	shift
	port="$(free_port)"
	"$work/mcpauth" --db "$gwdb" gateway --listen "127.0.0.1:$port" --policy "$work/policy.json" "$@" 2>"$work/$name.server.log" &
	pids+=($!)
	local gw=$!
	wait_http "http://127.0.0.1:$port/health"
	"$work/inject" -target "http://127.0.0.1:$port" >"$work/$name.inject" 2>&1 &
	pids+=($!)
	local inj=$!
	suite "$name" "$(url_from "$work/$name.inject")"
	kill "$inj" "$gw"
	wait "$gw" || true
	if ! grep -q '"msg":"gateway stopped"' "$work/$name.server.log"; then
		echo "FAIL: the gateway ($name) did not shut down cleanly" >&2
		tail -20 "$work/$name.server.log" >&2
		status=1
	fi
}

for mode in stateless stateful; do
	stateless=true
	[[ $mode == stateful ]] && stateless=false
	start=$SECONDS

	port="$(free_port)"
	"$work/everything-server" -http "127.0.0.1:$port" -stateless="$stateless" 2>"$work/bare-$mode.server.log" &
	pids+=($!)
	wait_http "http://127.0.0.1:$port/"
	suite "bare-$mode" "http://127.0.0.1:$port/"
	gateway "gateway-http-$mode" --upstream "http://127.0.0.1:$port/"
	kill "${pids[-3]}"

	"$work/protected" -server "$work/everything-server" -stateless="$stateless" >"$work/protected-$mode.out" 2>"$work/protected-$mode.server.log" &
	pids+=($!)
	url="$(url_from "$work/protected-$mode.out")"
	if [[ -z $url ]]; then
		cat "$work/protected-$mode.server.log" >&2
		echo "conformance: protected server did not start" >&2
		exit 1
	fi
	suite "protected-$mode" "$url"
	kill "${pids[-1]}"

	compare "$mode" "bare-$mode" "protected-$mode" "$work/protected-$mode.server.log"
	compare "$mode gateway http" "bare-$mode" "gateway-http-$mode" "$work/gateway-http-$mode.server.log"
	echo "== conformance $mode: $((SECONDS - start))s"
done

# The reference everything server: bare over its own streamable HTTP
# (stateful: it has no stateless mode), then over stdio behind the gateway.
# stdio has no stateless mode either: a stdio connection is a session.
start=$SECONDS
port="$(free_port)"
PORT="$port" node "$MCPAUTH_EVERYTHING_JS" streamableHttp >"$work/bare-everything.server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on port' "$work/bare-everything.server.log" && break; sleep 0.1; done
suite "bare-everything" "http://127.0.0.1:$port/mcp"
kill "${pids[-1]}"
gateway "gateway-stdio" --stdio "node $MCPAUTH_EVERYTHING_JS stdio"
# The gateway refuses a non-local Host on a loopback address (DNS rebinding);
# the bare reference server does not.
compare "stdio gateway (server-everything)" "bare-everything" "gateway-stdio" "$work/gateway-stdio.server.log" \
	dns-rebinding-protection/localhost-host-rebinding-rejected
echo "== conformance stdio: $((SECONDS - start))s"
exit $status
