#!/usr/bin/env bash
# The demo: builds and installs cyberbiz_fdw into Debian's PostgreSQL 15, starts the bundled
# CYBERBIZ sandbox with seeded data (it keeps running afterwards), creates database
# cyberbiz_demo with server, user mapping and the imported schema, and runs a few queries.
# Afterwards: `psql cyberbiz_demo` (as root) works against the same database and sandbox.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
DB=cyberbiz_demo
STATE=/var/tmp/cyberbiz-sandbox

install_extension
log "building the sandbox (release)"
cargo build --release -p cyberbiz-sandbox --quiet
SANDBOX_BIN="$REPO_ROOT/target/release/cyberbiz-sandbox"

log "starting the sandbox (1000 orders, 5 requests/s per token like the platform)"
mkdir -p "$STATE"
if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
  kill "$(cat "$STATE/pid")" || true
  sleep 0.5
fi
setsid nohup "$SANDBOX_BIN" serve --listen 127.0.0.1:0 --orders 1000 --customers 300 --products 80 >"$STATE/out" 2>&1 < /dev/null &
echo $! >"$STATE/pid"
URL=$(first_url "$STATE/out" "the sandbox")
echo "$URL" >"$STATE/url"
TOKEN=$("$SANDBOX_BIN" token --ttl-secs 2592000)

log "creating database $DB"
su postgres -c "cd / && psql -X -q -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'root') THEN CREATE ROLE root SUPERUSER LOGIN; END IF; END \\\$\\\$\""
su postgres -c "cd / && psql -X -q -c 'DROP DATABASE IF EXISTS $DB' -c 'CREATE DATABASE $DB OWNER root' -c \"ALTER DATABASE $DB SET timezone = 'Asia/Taipei'\""

psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE EXTENSION cyberbiz_fdw;
CREATE SERVER shop FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '$URL');
CREATE USER MAPPING FOR PUBLIC SERVER shop OPTIONS (api_token '$TOKEN');
CREATE SCHEMA cyberbiz;
IMPORT FOREIGN SCHEMA cyberbiz FROM SERVER shop INTO cyberbiz;
CREATE TABLE warehouse (sku text PRIMARY KEY, on_hand integer NOT NULL, bin text);
INSERT INTO warehouse
SELECT sku, (abs(hashtext(sku)) % 200)::int, 'A-' || lpad((row_number() OVER (ORDER BY sku))::text, 3, '0')
FROM cyberbiz.product_variants WHERE sku IS NOT NULL;
SQL

run() {
  printf '\n-- %s\n' "$1"
  psql -X -d "$DB" -c "$2"
}
log "queries (every one below talks to the sandbox over HTTP, at most 5 requests per second)"
run "Recent paid orders (last 7 days)" "
SELECT order_number, created_at, customer_name, financial_status, total_price
FROM cyberbiz.orders
WHERE financial_status IN ('paid', 'cod') AND created_at >= now() - interval '7 days'
ORDER BY created_at DESC LIMIT 10;"
run "Line items joined with the local warehouse table" "
SELECT li.sku, li.title, sum(li.quantity) AS sold, w.on_hand, w.bin
FROM cyberbiz.order_line_items li JOIN warehouse w ON w.sku = li.sku
GROUP BY li.sku, li.title, w.on_hand, w.bin
ORDER BY sold DESC LIMIT 10;"
run "Orders per financial status" "
SELECT financial_status, count(*) AS orders, sum(total_price) AS revenue
FROM cyberbiz.orders GROUP BY 1 ORDER BY 2 DESC;"
run "What a scan does" "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(*) FROM cyberbiz.customers;"

log "the local replica: the shop copied into schema shop_replica, then the same dashboard query live and local"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "SELECT count(*) AS replica_tables FROM cyberbiz_replicate('shop', 'shop_replica')"
requests() { psql -X -Atq -d "$DB" -c "SELECT coalesce(sum(requests), 0) FROM cyberbiz_stat_budgets WHERE server = 'shop'"; }
timed() {  # label, SQL: prints the requests it made and the seconds it took
  local before t0 t1
  before=$(requests); t0=$(date +%s%N)
  psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "$2" >/dev/null
  t1=$(date +%s%N)
  awk -v l="$1" -v n="$(( $(requests) - before ))" -v ns="$(( t1 - t0 ))" 'BEGIN { printf "%-48s %5d requests %8.2f s\n", l, n, ns / 1e9 }'
}
DASHBOARD="SELECT financial_status, count(*), sum(subtotal_price) FROM %s.orders WHERE created_at >= now() - interval '90 days' GROUP BY 1 ORDER BY 2 DESC"
timed "CALL cyberbiz_sync('shop') (first sync)" "CALL cyberbiz_sync('shop')"
timed "dashboard query on cyberbiz.orders (live)" "$(printf "$DASHBOARD" cyberbiz)"
timed "dashboard query on shop_replica.orders" "$(printf "$DASHBOARD" shop_replica)"
timed "CALL cyberbiz_sync('shop') (incremental)" "CALL cyberbiz_sync('shop')"
run "The replica's state" "SELECT table_name, rows, state, date_trunc('second', lag) AS lag FROM cyberbiz_replica_status WHERE table_name IN ('orders', 'order_line_items', 'customers', 'products') ORDER BY 1;"

cat <<MSG

The sandbox keeps answering at $URL (pid $(cat "$STATE/pid")); its request log is at
$URL/__sandbox/requests. Try:  psql $DB
  \\d cyberbiz.orders
  SELECT * FROM cyberbiz.orders WHERE id = (SELECT min(id) FROM cyberbiz.orders);

For a real shop: ALTER SERVER shop OPTIONS (SET api_url 'https://app-store-api.cyberbiz.io');
ALTER USER MAPPING FOR PUBLIC SERVER shop OPTIONS (SET api_token '<your custom app API token>');
MSG
