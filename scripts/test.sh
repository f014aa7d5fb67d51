#!/usr/bin/env bash
# Install everything the tests need, start PostgreSQL on loopback, and run the whole suite
# on SQLite and again on PostgreSQL. Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  need=""
  for pkg in postgresql openssl golang-cfssl wrk pebble bind9 bind9-dnsutils lego knot knot-dnsutils nginx haproxy apache2 curl xz-utils prometheus; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
  done
  if [ -n "$need" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
  fi
fi
scripts/fetch_pebble_ari.sh || echo "without Pebble 2.6 the ARI tests skip (and fail when CI=true)" >&2  # Pebble with ARI into .peers/

VENV=${CERTSMITH_VENV:-$ROOT/.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q -e ".[test]" 2> >(grep -v "^WARNING: Location" >&2)

# A throwaway PostgreSQL cluster on 127.0.0.1:55432, removed on exit.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
PGHOME=""
cleanup() {
  if [ -n "$PGHOME" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGHOME/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PGHOME"
  fi
}
trap cleanup EXIT
if [ -n "$PGBIN" ] && [ "$(id -u)" = 0 ]; then
  PGHOME=$(mktemp -d /tmp/certsmith-pg.XXXXXX); chmod 755 "$PGHOME"; chown postgres:postgres "$PGHOME"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGHOME/data" -U postgres --auth=trust -E UTF8 --no-instructions --no-sync >"$PGHOME/initdb.log"
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGHOME/data" -l "$PGHOME/server.log" -w \
    -o "-p 55432 -k $PGHOME -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  export CERTSMITH_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:55432/postgres"
fi

echo "== static checks (ruff, mypy --strict)"
"$VENV/bin/ruff" check src tests bench
"$VENV/bin/mypy"

SQLITE_TESTS=("$@")
PG_TESTS=(tests/contract tests/integration tests/public "$@")
if [ "${CERTSMITH_TEST_SERIAL:-}" = 1 ]; then
  echo "== tests on SQLite"
  CERTSMITH_TEST_BACKEND=sqlite "$VENV/bin/python" -m pytest -q "${SQLITE_TESTS[@]}"
  echo "== contract and integration tests on PostgreSQL"
  CERTSMITH_TEST_BACKEND=postgres "$VENV/bin/python" -m pytest -q "${PG_TESTS[@]}"
  exit 0
fi
# The two stages run side by side (most of a test's time is spent waiting on servers and peers); each has its own
# temporary folders and log, printed when both are done. CERTSMITH_TEST_SERIAL=1 runs them one after the other.
LOGS=$(mktemp -d /tmp/certsmith-tests.XXXXXX)
echo "== the whole suite on SQLite, and beside it the contract, integration and public tests on PostgreSQL"
CERTSMITH_TEST_BACKEND=sqlite "$VENV/bin/python" -m pytest -q -p no:cacheprovider --basetemp "$LOGS/sqlite" \
  "${SQLITE_TESTS[@]}" >"$LOGS/sqlite.log" 2>&1 &
SQLITE_PID=$!
CERTSMITH_TEST_BACKEND=postgres "$VENV/bin/python" -m pytest -q -p no:cacheprovider --basetemp "$LOGS/postgres" \
  "${PG_TESTS[@]}" >"$LOGS/postgres.log" 2>&1 &
PG_PID=$!
SQLITE_STATUS=0; PG_STATUS=0
wait "$SQLITE_PID" || SQLITE_STATUS=$?
wait "$PG_PID" || PG_STATUS=$?
echo "== tests on SQLite (exit $SQLITE_STATUS)"
cat "$LOGS/sqlite.log"
echo "== contract, integration and public tests on PostgreSQL (exit $PG_STATUS)"
cat "$LOGS/postgres.log"
rm -rf "$LOGS"
[ "$SQLITE_STATUS" = 0 ] && [ "$PG_STATUS" = 0 ]
