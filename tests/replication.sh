#!/usr/bin/env bash
# Past one machine: a shop's replica published with Postgres's own logical replication (README:
# Many shops). Three clusters of this machine:
#   15/main     ingest: shop_a's replica (the extension, the receiver, webhooks from a sandbox)
#   15/ingest2  ingest: shop_b's replica (the extension; synced by CALL cyberbiz_sync)
#   15/second   analytics: subscribes to both (fan-in), plain tables, no extension
# Checks that the first sync's rows and a later webhook's change arrive on `second`, equal to
# the ingest side, and prints P15: seconds from the webhook's commit on main (its commit
# timestamp) to the row on `second`. Run by tests/test.sh (part 4) and tests/bench.sh p15;
# `bash tests/replication.sh` alone needs the extension installed (tests/setup.sh).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
TRIES=${P15_TRIES:-5}
DB=cyberbiz_lr
[ -x target/debug/cyberbiz-sandbox ] || cargo test -p cyberbiz-sandbox --no-run --quiet
BIN=${SANDBOX_BIN:-$REPO_ROOT/target/debug/cyberbiz-sandbox}
TOKEN=$("$BIN" token --ttl-secs 86400)

# A cluster of this machine, made anew: logical replication on, commit timestamps kept (P15).
# (On main the same settings hold until the next restart: cleanup removes the file.)
fresh_cluster() {
  if pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^15 $1$"; then pg_dropcluster --stop 15 "$1"; fi
  pg_createcluster 15 "$1" >/dev/null
  replication_conf "$1"
  pg_ctlcluster 15 "$1" start
}
replication_conf() {
  printf "wal_level = logical\ntrack_commit_timestamp = on\n" >"/etc/postgresql/15/$1/conf.d/cyberbiz_fdw_replication.conf"
}
port() { pg_lsclusters -h | awk -v c="$1" '$1 == 15 && $2 == c {print $3}'; }
# psql as postgres on port $1, database $2 (the rest: psql's arguments).
on() { local p=$1 d=$2; shift 2; (cd / && su postgres -c "psql -X -q -v ON_ERROR_STOP=1 -At -p $p -d $d $(printf '%q ' "$@")"); }
fail() { echo "replication test: $*" >&2; exit 1; }

# Drops the subscriptions (and so their slots on the publishers), the two clusters, and any slot
# left on main (a slot nobody reads keeps WAL forever: its walsender is ended first). Says so
# when a slot stays.
cleanup() {
  local c
  if [ -n "${P3:-}" ]; then
    on "$P3" "$DB" -c "DROP SUBSCRIPTION IF EXISTS shop_a" -c "DROP SUBSCRIPTION IF EXISTS shop_b" >/dev/null 2>&1 || true
  fi
  for c in second ingest2; do
    if pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^15 $c$"; then pg_dropcluster --stop 15 "$c"; fi
  done
  on "$(port main)" postgres -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name IN ('shop_a', 'shop_b') AND active_pid IS NOT NULL" \
    -c "SELECT pg_sleep(0.5)" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('shop_a', 'shop_b')" >/dev/null ||
    echo "replication test: a replication slot may be left on 15/main: SELECT * FROM pg_replication_slots" >&2
  rm -f /etc/postgresql/15/main/conf.d/cyberbiz_fdw_replication.conf "${SEEN:-}"
  kill "${SANDBOX_PID:-}" 2>/dev/null || true
}
trap cleanup EXIT

log "logical replication: clusters 15/ingest2 and 15/second"
P1=$(port main)
on "$P1" postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('shop_a', 'shop_b')" >/dev/null
on "$P1" postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
replication_conf main
receiver_on "$DB" # (a restart of main, which takes the settings above)
fresh_cluster ingest2
fresh_cluster second
P2=$(port ingest2) P3=$(port second)
start_sandbox "$BIN" --rps 0 --orders 120 --customers 40 --products 10 --webhook-url "$RECV_URL" --app-secret lr-secret

# shop NAME PORT: a server on the sandbox with a replica of orders (and line items) and
# customers in schema NAME_rep, and a publication of that schema, on cluster PORT.
shop() {
  on "$2" "$DB" >/dev/null <<SQL
SET client_min_messages = error;
CREATE EXTENSION IF NOT EXISTS cyberbiz_fdw;
CREATE SERVER $1 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '$SANDBOX_URL', shop_domain 'sandbox.cyberbiz.co');
CREATE USER MAPPING FOR CURRENT_USER SERVER $1 OPTIONS (api_token '$TOKEN', app_secret 'lr-secret');
SELECT count(*) FROM cyberbiz_replicate('$1', '$1_rep', ARRAY['orders', 'customers']);
CREATE PUBLICATION $1 FOR TABLES IN SCHEMA $1_rep;
SQL
}
# subscribe NAME PORT: the replica schema's tables on `second` (their DDL from the publisher),
# and a subscription to its publication.
subscribe() {
  (cd / && su postgres -c "pg_dump -p $2 -d $DB --schema-only --no-owner --no-privileges --no-publications --no-subscriptions -n $1_rep | psql -X -q -v ON_ERROR_STOP=1 -p $P3 -d $DB") >/dev/null
  on "$P3" "$DB" -c "SET client_min_messages = warning" -c "CREATE SUBSCRIPTION $1 CONNECTION 'host=/var/run/postgresql port=$2 dbname=$DB user=postgres' PUBLICATION $1"
}
# Digest of a replica's rows (every column but the time of the local write), on PORT.
digest() {
  on "$1" "$DB" -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(x, '' ORDER BY x), '')) FROM (SELECT (to_jsonb(t) - '_synced_at')::text x FROM $2 t) s"
}
# Waits up to 60 s until table $2 on `second` has the digest it has on PORT $1.
arrives() {
  local want got
  want=$(digest "$1" "$2")
  for _ in $(seq 1 300); do
    got=$(digest "$P3" "$2")
    [ "$got" = "$want" ] && { echo "    $2 on second: $got (rows, digest), as on its ingest cluster"; return 0; }
    sleep 0.2
  done
  fail "$2 on second is '$got', on its ingest cluster '$want'"
}

on "$P2" postgres -c "CREATE DATABASE $DB"
on "$P3" postgres -c "CREATE DATABASE $DB"
shop shop_a "$P1"
shop shop_b "$P2"
on "$P1" "$DB" -c "CREATE SCHEMA shop_a" -c "IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (orders) FROM SERVER shop_a INTO shop_a"
subscribe shop_a "$P1"
subscribe shop_b "$P2"
# The first syncs run after the subscriptions: their rows stream.
on "$P1" "$DB" -c "CALL cyberbiz_sync('shop_a')"
on "$P2" "$DB" -c "CALL cyberbiz_sync('shop_b')"
for t in shop_a_rep.orders shop_a_rep.order_line_items shop_a_rep.customers; do arrives "$P1" $t; done
for t in shop_b_rep.orders shop_b_rep.order_line_items shop_b_rep.customers; do arrives "$P2" $t; done
[ "$(on "$P3" "$DB" -c "SELECT count(*) FROM shop_a_rep.orders")" -gt 100 ] || fail "the first sync's orders are not on second"

# P15: a write through the FDW; the sandbox's webhook reaches the receiver, which applies it to
# shop_a's replica; `second` polls (every 2 ms) until it holds the row.
sleep 1.5 # the receiver reads App Secrets every second
SEEN=$(mktemp)
for i in $(seq 1 "$TRIES"); do
  id=$(on "$P1" "$DB" -c "SELECT id FROM shop_a_rep.orders ORDER BY id OFFSET $i LIMIT 1")
  on "$P3" "$DB" -c "SELECT 1" >/dev/null
  (on "$P3" "$DB" -c "DO \$\$ BEGIN
      FOR k IN 1..15000 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM shop_a_rep.orders WHERE id = $id AND raw->>'note' = 'lr $i');
        PERFORM pg_sleep(0.002);
      END LOOP; END \$\$" -c "SELECT clock_timestamp()" >"$SEEN") &
  poller=$!
  on "$P1" "$DB" -c "UPDATE shop_a.orders SET note = 'lr $i' WHERE id = $id" >/dev/null
  wait "$poller"
  seen=$(cat "$SEEN")
  [ "$(on "$P3" "$DB" -c "SELECT raw->>'note' FROM shop_a_rep.orders WHERE id = $id")" = "lr $i" ] || fail "the webhook's change of order $id is not on second"
  on "$P1" "$DB" -c "SELECT format('P15 webhook commit on main -> row on second, try %s: %s s', $i,
      round(extract(epoch FROM '$seen'::timestamptz - pg_xact_commit_timestamp(xmin))::numeric, 3))
      FROM shop_a_rep.orders WHERE id = $id"
done
arrives "$P1" shop_a_rep.orders
echo "logical replication: first syncs and webhooks of 2 ingest clusters arrived on the analytics cluster"
