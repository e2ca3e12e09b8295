#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for the storage tests.
#   scripts/postgres.sh start   -> prints: export LLM_ROUTER_PG_DSN=postgresql://...
#   scripts/postgres.sh stop    (stops the server and deletes the cluster)
#   scripts/postgres.sh halt    (stops the server, keeps the cluster: `start` brings it back)
# The cluster lives in $LLM_ROUTER_PG_DIR (default /tmp/llm-router-pg), listens on 127.0.0.1
# and a unix socket on port $LLM_ROUTER_PG_PORT (default 55432), and runs as the `postgres`
# user when started by root (initdb refuses root).
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DIR=${LLM_ROUTER_PG_DIR:-/tmp/llm-router-pg}
PORT=${LLM_ROUTER_PG_PORT:-55432}
DB=${LLM_ROUTER_PG_DB:-llm_router_test}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    if [ ! -s "$DIR/data/PG_VERSION" ]; then
      mkdir -p "$DIR"
      [ "$(id -u)" = 0 ] && chown postgres "$DIR"
      as_owner "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >"$DIR/initdb.log"
    fi
    if ! as_owner "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -o \
        "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    fi
    as_owner "$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
      as_owner "$PGBIN/createdb" -h "$DIR" -p "$PORT" -U postgres "$DB"
    echo "export LLM_ROUTER_PG_DSN=postgresql://postgres@127.0.0.1:$PORT/$DB"
    ;;
  stop)
    if [ -d "$DIR/data" ]; then
      as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
      rm -rf "$DIR"
    fi
    ;;
  halt)
    as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start|stop|halt" >&2
    exit 2
    ;;
esac
