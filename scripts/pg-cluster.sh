#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, in a directory of its own:
#   scripts/pg-cluster.sh start DIR   initdb into DIR, start the server on a free loopback port
#                                     (and a socket in DIR), print its URL on stdout
#   scripts/pg-cluster.sh stop DIR    stop it and remove DIR
#   scripts/pg-cluster.sh kill DIR    stop it at once (as a crash would), keeping DIR
#   scripts/pg-cluster.sh restart DIR start a killed server again on the same port
# The tests read the URL from DEVIN_ORCH_TEST_PG_URL (scripts/test.sh sets it). As root the
# server runs as the unprivileged user `postgres` (the postgresql-15 package creates it), since
# PostgreSQL refuses to run as root; otherwise as the calling user. Trust authentication on
# loopback only, fsync off: nothing here outlives the test run. PG_BIN names the server's bin
# directory if it is not /usr/lib/postgresql/<newest>/bin.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|kill|restart DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
action=$1
dir=$2

bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "pg-cluster: no PostgreSQL server binaries (install postgresql-15, or set PG_BIN)" >&2
  exit 1
fi

# Runs a command as the server's user.
as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_server() {
  as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-k $dir -p $1 -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
}

case "$action" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres "$dir"
      if ! runuser -u postgres -- test -w "$dir"; then
        echo "pg-cluster: user postgres cannot reach $dir (is a parent directory private?)" >&2
        exit 1
      fi
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    as_server_user "$bin/initdb" -D "$dir/data" -A trust -U orch --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    start_server "$port"
    url="postgresql://orch@127.0.0.1:$port/postgres"
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
  kill)
    as_server_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  restart)
    start_server "$(cat "$dir/port")"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_server_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
