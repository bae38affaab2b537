#!/usr/bin/env bash
# Runs every test of cyberbiz_fdw on Debian 12 as root, installing what is missing:
#   0. cargo fmt --check and cargo clippy --all-targets -D warnings (the whole workspace)
#   1. the sandbox's own tests (cargo test -p cyberbiz-sandbox)
#   2. unit tests and #[pg_test]s in a real PostgreSQL 15 (cargo pgrx test, run as postgres)
#   3. pg_regress goldens against the release build installed into Debian's cluster
#   4. logical replication of replicas to other clusters of this machine (tests/replication.sh)
# `bash tests/test.sh` runs them all; `bash tests/test.sh regress` (or lint, sandbox, pgtest,
# replication) one part.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
started=$(date +%s)
part=${1:-all}

if [ "$part" = all ] || [ "$part" = lint ]; then
  log "0/4 rustfmt and clippy"
  cargo fmt --all --check
  cargo clippy --workspace --all-targets --quiet -- -D warnings
fi

if [ "$part" = all ] || [ "$part" = sandbox ]; then
  log "1/4 sandbox tests"
  cargo test -p cyberbiz-sandbox --quiet
fi

if [ "$part" = all ] || [ "$part" = pgtest ]; then
  log "2/4 unit tests and pg_tests (PostgreSQL 15, as the postgres user)"
  PGDATA_TEST=$(mktemp -d)
  chown postgres:postgres "$PGDATA_TEST"
  # cargo pgrx test installs its build over the library a preloaded Debian cluster has mapped.
  stop_cluster
  cargo pgrx test pg15 --runas postgres --pgdata "$PGDATA_TEST"
  rm -rf "$PGDATA_TEST"
fi

if [ "$part" = replication ]; then
  log "4/4 logical replication"
  install_extension
  bash tests/replication.sh
  log "done in $(( $(date +%s) - started )) s"
  exit 0
fi

if [ "$part" != all ] && [ "$part" != regress ]; then
  log "done in $(( $(date +%s) - started )) s"
  exit 0
fi
log "3/4 pg_regress"
# cargo pgrx test installed its test build; put the release build back.
install_extension
[ -x target/debug/cyberbiz-sandbox ] || cargo test -p cyberbiz-sandbox --no-run --quiet
SANDBOX_BIN="$REPO_ROOT/target/debug/cyberbiz-sandbox"
# What runs as postgres (pg_regress) must not need to read the clone: root's home is mode 700 on
# Debian. Copy the goldens into a folder postgres owns.
PGWORK=$(mktemp -d)
cp -r tests/pg_regress "$PGWORK/pg_regress"
rm -rf "$PGWORK/pg_regress/results"
chown -R postgres:postgres "$PGWORK"
start_sandbox "$SANDBOX_BIN" --rps 0 --latency-ms 20000 --now "2026-11-28 12:00:00"
SLOW_URL=$SANDBOX_URL SLOW_PID=$SANDBOX_PID
# The replica test's scheduler and a CALL syncing one server at once: a shop of its own, whose
# request log the test reads.
start_sandbox "$SANDBOX_BIN" --rps 0 --seed 2 --orders 300 --now "2026-11-28 12:00:00"
CONCURRENT_URL=$SANDBOX_URL CONCURRENT_PID=$SANDBOX_PID
start_sandbox "$SANDBOX_BIN" --rps 0 --seed 1 --now "2026-11-28 12:00:00"
trap 'kill $SANDBOX_PID $SLOW_PID $CONCURRENT_PID 2>/dev/null || true' EXIT
TOKEN=$("$SANDBOX_BIN" token --ttl-secs 86400)
DB=cyberbiz_fdw_regress
psql_pg -d postgres -c "\"DROP DATABASE IF EXISTS $DB\""
psql_pg -d postgres -c "\"CREATE DATABASE $DB\""
# The tests read the sandbox's address and a token from database settings.
psql_pg -d postgres -c "\"ALTER DATABASE $DB SET cyberbiz_test.api_url = '$SANDBOX_URL'\""
psql_pg -d postgres -c "\"ALTER DATABASE $DB SET cyberbiz_test.api_token = '$TOKEN'\""
psql_pg -d postgres -c "\"ALTER DATABASE $DB SET cyberbiz_test.slow_url = '$SLOW_URL'\""
psql_pg -d postgres -c "\"ALTER DATABASE $DB SET cyberbiz_test.concurrent_url = '$CONCURRENT_URL'\""
# Webhooks end to end: the extension's own receiver (a background worker of the preloaded
# cluster) listens for this database; a third sandbox posts signed webhooks to it for writes
# made through the FDW.
receiver_on "$DB"
MAIN_URL=$SANDBOX_URL MAIN_PID=$SANDBOX_PID
start_sandbox "$SANDBOX_BIN" --rps 0 --now "2026-11-28 12:00:00" --orders 30 --customers 20 --products 10 --webhook-url "$RECV_URL" --app-secret regress-app-secret
HOOKS_PID=$SANDBOX_PID
psql_pg -d postgres -c "\"ALTER DATABASE $DB SET cyberbiz_test.hooks_url = '$SANDBOX_URL'\""
trap 'kill $MAIN_PID $SLOW_PID $HOOKS_PID $CONCURRENT_PID 2>/dev/null || true' EXIT
OUT=$(mktemp -d)
mkdir -p "$OUT/fallback"
chown -R postgres:postgres "$OUT"
# REGRESS_TESTS="a b" runs only those goldens (while writing one).
TESTS=${REGRESS_TESTS:-$(cd tests/pg_regress/sql && ls *.sql | sed 's/\.sql$//' | sort | tr '\n' ' ')}
# The fallback without shared_preload_libraries runs on a server of its own (pg_regress's
# temporary instance), after the main goldens.
if ! (cd "$PGWORK" && su postgres -c "/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress \
      --bindir=/usr/lib/postgresql/15/bin --use-existing --dbname=$DB \
      --inputdir=$PGWORK/pg_regress --outputdir=$OUT $TESTS"); then
  cat "$OUT/regression.diffs" >&2 || true
  echo "pg_regress results: $OUT/results" >&2
  exit 1
fi
FALLBACK_OUT="$OUT/fallback"
if ! (cd "$PGWORK" && su postgres -c "CYBERBIZ_TEST_API_URL=$MAIN_URL CYBERBIZ_TEST_API_TOKEN=$TOKEN \
      /usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress --bindir=/usr/lib/postgresql/15/bin \
      --temp-instance=$PGWORK/fallback-instance --port=54329 --inputdir=$PGWORK/pg_regress/fallback \
      --outputdir=$FALLBACK_OUT fallback"); then
  cat "$FALLBACK_OUT/regression.diffs" >&2 || true
  echo "pg_regress results: $FALLBACK_OUT/results" >&2
  exit 1
fi

if [ "$part" = all ]; then
  log "4/4 logical replication"
  SANDBOX_BIN=$SANDBOX_BIN bash tests/replication.sh
fi

log "all tests passed in $(( $(date +%s) - started )) s"
