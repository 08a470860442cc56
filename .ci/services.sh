#!/usr/bin/env bash
# Installs (from Debian's packages, if missing) and starts the PostgreSQL and
# Redis servers the tests use, on loopback, and prints the environment
# variables that point the tests at them. Also installs Chromium, which the
# browser test of examples/docsearch drives headless. Meant to be sourced:
#
#   source .ci/services.sh
#
# Idempotent: servers already running are reused.
set -euo pipefail

MCPAUTH_SVC_DIR=${MCPAUTH_SVC_DIR:-/tmp/mcpauth-services}
PG_PORT=${PG_PORT:-55432}
REDIS_PORT=${REDIS_PORT:-56379}

need_pkgs=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[[ -n "$pg_bin" && -x "$pg_bin/initdb" ]] || need_pkgs+=(postgresql)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_pkgs+=(chromium)
if ((${#need_pkgs[@]})); then
  echo "installing ${need_pkgs[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need_pkgs[@]}" >&2
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

mkdir -p "$MCPAUTH_SVC_DIR"
chmod 755 "$MCPAUTH_SVC_DIR"

# PostgreSQL refuses to run as root: run the cluster as the postgres user.
pg_user=postgres
id "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home "$pg_user"
pg_data="$MCPAUTH_SVC_DIR/pg"
if ! su "$pg_user" -s /bin/sh -c "$pg_bin/pg_isready -q -h 127.0.0.1 -p $PG_PORT" 2>/dev/null; then
  if [[ ! -f "$pg_data/PG_VERSION" ]]; then
    mkdir -p "$pg_data"
    chown "$pg_user" "$pg_data"
    su "$pg_user" -s /bin/sh -c "$pg_bin/initdb --no-sync -D $pg_data -U postgres --auth=trust -E UTF8 --no-locale >/dev/null" >&2
  fi
  su "$pg_user" -s /bin/sh -c "$pg_bin/pg_ctl -D $pg_data -l $pg_data/log -w -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k $pg_data -c fsync=off -c max_connections=200' start" >&2
fi
if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='mcpauth_test'" | grep -q 1; then
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE mcpauth_test" >&2
fi

if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
    --dir "$MCPAUTH_SVC_DIR" --logfile "$MCPAUTH_SVC_DIR/redis.log" >&2
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

export MCPAUTH_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$PG_PORT/mcpauth_test?sslmode=disable"
export MCPAUTH_TEST_REDIS_ADDR="127.0.0.1:$REDIS_PORT"
echo "MCPAUTH_TEST_POSTGRES_DSN=$MCPAUTH_TEST_POSTGRES_DSN" >&2
echo "MCPAUTH_TEST_REDIS_ADDR=$MCPAUTH_TEST_REDIS_ADDR" >&2
