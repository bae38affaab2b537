#!/usr/bin/env bash
# Benchmarks (numbers go to the README). Usage: bash tests/bench.sh [p1|p2|p3|p4|p5|p6|w1|p8|p9|p10|p11|p12|p13|r|v|shops|p14|p15|all]
# One function per benchmark (bench_p1, ...); their Python is in tests/bench/.
#   P1  full scan of 2,500 orders, sandbox --rps 5 --latency-ms 300: rows/s against the bound of
#       250 rows/s (5 requests/s x 50 rows)
#   P3  one budget per token across the cluster, sandbox --rps 5 --latency-ms 50: 4 and 16
#       concurrent full scans on one token (429s, aggregate rows/s against 250); latency of 20
#       single-row lookups while 16 scans run (p50/p95); two tokens scanning at once (each at
#       its own 5 requests/s). The Debian cluster is preloaded (tests/setup.sh).
#   P2  requests per query (pushdown) against a sandbox of 5,000 orders, against the minimum
#       the API allows and a naive full scan (100 pages)
#   P6  webhook ingest rate of order-sized payloads in one session (verify + dedupe + mirror
#       upsert) against plain INSERT INTO t VALUES ($1::jsonb) of the same payloads
#   W1  a 20-row UPDATE against a sandbox at --rps 5: wall time and 429s (expect about 4 s, none)
#   P4  backend peak RSS growth (VmHWM) during a scan of 100,000 orders, sandbox --rps 0
#   P5  decode rate of SELECT count(*) over orders (sandbox --rps 0) against Postgres's own
#       jsonb_to_recordset over the same page bodies loaded into a local table, in one run
EXTRA_PACKAGES="python3 curl"
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
which=${1:-all}
DB=cyberbiz_bench

install_extension
cargo build --release -p cyberbiz-sandbox --quiet
BIN="$REPO_ROOT/target/release/cyberbiz-sandbox"
TOKEN=$("$BIN" token --ttl-secs 86400)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
su postgres -c "cd / && psql -X -q -c 'DROP DATABASE IF EXISTS $DB' -c 'CREATE DATABASE $DB'"
q() { su postgres -c "cd / && psql -X -q -v ON_ERROR_STOP=1 -d $DB -At" ; }
echo "CREATE EXTENSION cyberbiz_fdw;" | q

# server NAME URL RPS: a server on a sandbox with every table imported into schema NAME.
server() {
  q <<SQL
CREATE SERVER $1 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '$2', requests_per_second '$3');
CREATE USER MAPPING FOR CURRENT_USER SERVER $1 OPTIONS (api_token '$TOKEN');
CREATE SCHEMA $1;
IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (orders) FROM SERVER $1 INTO $1;
SQL
}

# Milliseconds of a statement's execution (EXPLAIN ANALYZE's Execution Time).
exec_ms() {
  echo "EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF) $1" | q | python3 tests/bench/sandbox_log.py execution-time
}

bench_p1() {
  start_sandbox "$BIN" --rps 5 --latency-ms 300 --orders 2500; PIDS+=("$SANDBOX_PID")
  server p1 "$SANDBOX_URL" 5
  ms=$(exec_ms "SELECT count(*) FROM p1.orders")
  python3 tests/bench/p1_report.py "$ms"
  curl -s "$SANDBOX_URL/__sandbox/requests" | python3 tests/bench/sandbox_log.py summary
}

bench_p2() {
  start_sandbox "$BIN" --rps 0 --orders 5000 --now "2026-11-28 12:00:00"; PIDS+=("$SANDBOX_PID")
  server p2 "$SANDBOX_URL" 1000
  echo "IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (order_line_items) FROM SERVER p2 INTO p2;" | q
  echo "CREATE TABLE p2_local AS SELECT id, order_number FROM (SELECT id, order_number FROM p2.orders OFFSET 0) o; CREATE TABLE p2_pick AS SELECT id FROM p2_local ORDER BY id LIMIT 20; ANALYZE p2_pick;" | q
  ID=$(echo "SELECT id FROM p2_local ORDER BY id OFFSET 2500 LIMIT 1" | q)
  IDS=$(echo "SELECT string_agg(id::text, ',') FROM (SELECT id FROM p2_local ORDER BY id OFFSET 100 LIMIT 5) x" | q)
  NUM=$(echo "SELECT order_number FROM p2_local ORDER BY id OFFSET 2500 LIMIT 1" | q)
  PAID=$(echo "SELECT count(*) FROM (SELECT * FROM p2.orders OFFSET 0) o WHERE financial_status = 'paid' AND created_at >= timestamptz '2026-11-28 12:00:00+08' - interval '7 days'" | q)
  printf '%-52s %8s %8s %10s\n' "P2 query (5,000 orders)" requests minimum full-scan
  p2() {
    curl -s -X DELETE "$SANDBOX_URL/__sandbox/requests" >/dev/null
    echo "$2" | q >/dev/null
    n=$(requests "$SANDBOX_URL")
    printf '%-52s %8s %8s %10s\n' "$1" "$n" "$3" 100
  }
  p2 "id = c" "SELECT * FROM p2.orders WHERE id = $ID" 1
  p2 "id IN (5 ids)" "SELECT * FROM p2.orders WHERE id IN ($IDS)" 5
  p2 "paid orders of the last 7 days ($PAID rows)" "SELECT * FROM p2.orders WHERE financial_status = 'paid' AND created_at >= timestamptz '2026-11-28 12:00:00+08' - interval '7 days'" $(( (PAID + 49) / 50 > 0 ? (PAID + 49) / 50 : 1 ))
  p2 "LIMIT 10" "SELECT * FROM p2.orders LIMIT 10" 1
  p2 "join of 20 local order ids" "SELECT o.order_number FROM p2_pick p JOIN p2.orders o ON o.id = p.id" 20
  p2 "order_number = c (lookup, then the order)" "SELECT * FROM p2.orders WHERE order_number = $NUM" 2
  p2 "order_line_items WHERE order_id = c" "SELECT * FROM p2.order_line_items WHERE order_id = $ID" 1
}

bench_p6() {
  start_sandbox "$BIN" --rps 0 --orders 5000; PIDS+=("$SANDBOX_PID")
  tmp=$(mktemp); chmod 644 "$tmp"
  for p in $(seq 1 100); do
    curl -s -H "Authorization: Bearer $TOKEN" "$SANDBOX_URL/v1/orders?per_page=50&page=$p"; echo
  done > "$tmp"
  q <<SQL
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SERVER p6 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (shop_domain 'bench.cyberbiz.co');
CREATE USER MAPPING FOR CURRENT_USER SERVER p6 OPTIONS (api_token 'a.b.c', app_secret 'bench-secret');
CREATE TABLE p6_pages (body text);
COPY p6_pages FROM '$tmp' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
CREATE TABLE p6_payloads AS SELECT o::text AS body FROM p6_pages, jsonb_array_elements(body::jsonb) o;
ALTER TABLE p6_payloads ADD COLUMN sig text;
UPDATE p6_payloads SET sig = encode(hmac(body, 'bench-secret', 'sha256'), 'hex');
CREATE TABLE p6_plain (payload jsonb);
CREATE SERVER p6r FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (shop_domain 'replica.cyberbiz.co');
CREATE USER MAPPING FOR CURRENT_USER SERVER p6r OPTIONS (api_token 'a.b.c', app_secret 'bench-secret');
SELECT count(*) FROM cyberbiz_replicate('p6r', 'p6r_rep', ARRAY['orders']);
SQL
  n=$(echo "SELECT count(*) FROM p6_payloads" | q)
  bytes=$(echo "SELECT avg(length(body))::int FROM p6_payloads" | q)
  plain=$(exec_ms "INSERT INTO p6_plain SELECT body::jsonb FROM p6_payloads")
  # Another event name for the replica's run: 0.2.0's dedupe key does not name the server, so the
  # same deliveries would be taken for the first run's redeliveries (issue 17).
  for target in bench:orders/update replica:orders/paid; do
    event=${target#*:} target=${target%%:*}
    ingest=$(exec_ms "SELECT count(cyberbiz_ingest_webhook(body, '$event', sig, '$target.cyberbiz.co')) FROM p6_payloads")
    dup=$(exec_ms "SELECT count(cyberbiz_ingest_webhook(body, '$event', sig, '$target.cyberbiz.co')) FROM p6_payloads")
    python3 tests/bench/p6_report.py "$target" "$n" "$bytes" "$ingest" "$plain" "$dup"
  done
  echo "    replica: $(echo "SELECT count(*) FROM p6r_rep.orders" | q) orders, $(echo "SELECT count(*) FROM p6r_rep.order_line_items" | q) line items"
  rm -f "$tmp"
}

bench_w1() {
  start_sandbox "$BIN" --rps 5 --products 40; PIDS+=("$SANDBOX_PID")
  q <<SQL
CREATE SERVER w1 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '$SANDBOX_URL', use_remote_estimate 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER w1 OPTIONS (api_token '$TOKEN');
CREATE SCHEMA w1;
IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (products) FROM SERVER w1 INTO w1;
CREATE TABLE w1_ids AS SELECT id FROM (SELECT id FROM w1.products OFFSET 0) p ORDER BY id LIMIT 20;
SQL
  curl -s -X DELETE "$SANDBOX_URL/__sandbox/requests" >/dev/null
  ms=$(exec_ms "UPDATE w1.products SET published = NOT published WHERE id IN (SELECT id FROM w1_ids)")
  curl -s "$SANDBOX_URL/__sandbox/requests" | python3 tests/bench/sandbox_log.py w1 "$ms"
}

bench_p3() {
  start_sandbox "$BIN" --rps 5 --latency-ms 50 --orders 1000; PIDS+=("$SANDBOX_PID")
  P3_URL=$SANDBOX_URL
  server p3 "$P3_URL" 5
  # A second token on the same shop: a budget of its own.
  TOKEN2=$("$BIN" token --ttl-secs 86399)
  q <<SQL
CREATE SERVER p3b FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '$P3_URL', requests_per_second '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER p3b OPTIONS (api_token '$TOKEN2');
CREATE SCHEMA p3b;
IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (orders) FROM SERVER p3b INTO p3b;
SQL
  ID=$(echo "SELECT id FROM p3.orders LIMIT 1" | q)
  python3 tests/bench/p3_load.py "$DB" "$P3_URL" "$ID"
}

bench_p4() {
  start_sandbox "$BIN" --rps 0 --orders 100000 --customers 2000 --products 200; PIDS+=("$SANDBOX_PID")
  server p4 "$SANDBOX_URL" 1000
  # One session: warm up (library, runtime, first request), then read the backend's own peak
  # RSS (VmHWM) before and after the scan.
  out=$(su postgres -c "cd / && psql -X -q -At -d $DB" <tests/bench/p4_rss.sql)
  echo "$out" | python3 tests/bench/p4_report.py
}

bench_p5() {
  start_sandbox "$BIN" --rps 0 --orders 20000; PIDS+=("$SANDBOX_PID")
  server p5 "$SANDBOX_URL" 1000
  # The same page bodies, loaded locally (one row per page).
  tmp=$(mktemp); chmod 644 "$tmp"
  for p in $(seq 1 400); do
    curl -s -H "Authorization: Bearer $TOKEN" "$SANDBOX_URL/v1/orders?per_page=50&page=$p"; echo
  done > "$tmp"
  echo "CREATE TABLE pages (body text); COPY pages FROM '$tmp' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02'); ANALYZE pages;" | q
  fdw=$(exec_ms "SELECT count(*) FROM p5.orders")
  fdw2=$(exec_ms "SELECT count(*) FROM p5.orders")
  loc=$(exec_ms "SELECT count(*) FROM pages, jsonb_to_recordset(body::jsonb) AS o(id bigint)")
  loc2=$(exec_ms "SELECT count(*) FROM pages, jsonb_to_recordset(body::jsonb) AS o(id bigint)")
  tfdw=$(exec_ms "SELECT count(created_at), sum(total_price), count(financial_status), max(customer_name), count(tags) FROM p5.orders")
  tloc=$(exec_ms "SELECT count(created_at), sum((prices->>'total_price')::numeric), count(statuses->>'financial_status'), max(customer->>'name'), count(tags) FROM pages, jsonb_to_recordset(body::jsonb) AS o(id bigint, created_at timestamp, prices jsonb, statuses jsonb, customer jsonb, tags jsonb)")
  python3 tests/bench/p5_report.py "$fdw" "$fdw2" "$loc" "$loc2" "$tfdw" "$tloc"
  rm -f "$tmp"
}

# Seconds a statement takes, as psql sees it (CALL cannot run under EXPLAIN).
secs() {
  local t0 t1
  t0=$(date +%s%N)
  echo "$1" | q >/dev/null
  t1=$(date +%s%N)
  awk -v ns="$(( t1 - t0 ))" 'BEGIN { printf "%.2f", ns / 1e9 }'
}
requests() { curl -s "$1/__sandbox/requests" | python3 tests/bench/sandbox_log.py count; }
clear() { curl -s -X DELETE "$1/__sandbox/requests" >/dev/null; }

# P8 first sync of N orders (BENCH_P8_ORDERS, default 100,000) with line items at --rps 5;
# P9 incremental syncs after K = 0, 10, 500 orders changed, against ceil(K/50) + 1 requests.
bench_p8() {
  N=${BENCH_P8_ORDERS:-100000}
  start_sandbox "$BIN" --rps 5 --latency-ms 50 --orders "$N" --customers 200 --products 50; PIDS+=("$SANDBOX_PID")
  server p8 "$SANDBOX_URL" 5
  echo "SELECT count(*) FROM cyberbiz_replicate('p8', 'p8_rep', ARRAY['orders'])" | q >/dev/null
  clear "$SANDBOX_URL"
  s=$(secs "CALL cyberbiz_sync('p8')")
  n=$(requests "$SANDBOX_URL")
  items=$(echo "SELECT count(*) FROM p8_rep.order_line_items" | q)
  echo "    replica: $(echo "SELECT count(*) FROM p8_rep.orders" | q) orders, $items line items (the shop: $N orders)"
  python3 tests/bench/p8_report.py "$N" "$s" "$n" "$items"
  for k in 0 10 500; do
    [ "$k" -gt 0 ] && curl -s -X POST "$SANDBOX_URL/__sandbox/touch?count=$k" >/dev/null
    clear "$SANDBOX_URL"
    s=$(secs "CALL cyberbiz_sync('p8')")
    echo "P9 incremental sync after $k orders changed: $(requests "$SANDBOX_URL") requests (ceil(K/50) + 1 = $(( (k + 49) / 50 + 1 ))), $s s"
  done
}

# P10 a Metabase-like workload (per table: its first 10,000 rows, the distinct values of each
# text column, a count) on the replica and on the foreign tables, sandbox --rps 5.
bench_p10() {
  start_sandbox "$BIN" --rps 5 --latency-ms 50 --orders 1000 --customers 300 --products 80; PIDS+=("$SANDBOX_PID")
  server p10 "$SANDBOX_URL" 5
  echo "IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (order_line_items, customers, products) FROM SERVER p10 INTO p10;
        SELECT count(*) FROM cyberbiz_replicate('p10', 'p10_rep', ARRAY['orders', 'customers', 'products'])" | q >/dev/null
  echo "CALL cyberbiz_sync('p10')" | q
  workload() {  # schema: the statements of the workload on its four tables
    for t in orders order_line_items customers products; do
      echo "SELECT * FROM $1.$t LIMIT 10000;"
      echo "SELECT count(*) FROM $1.$t;"
      echo "SELECT string_agg(format('SELECT DISTINCT %I FROM $1.$t LIMIT 1000;', attname), ' ') FROM pg_attribute
            WHERE attrelid = 'p10.$t'::regclass AND attnum > 0 AND atttypid = 'text'::regtype;" | q
    done
  }
  for schema in p10_rep p10; do
    clear "$SANDBOX_URL"
    s=$(secs "$(workload $schema)")
    echo "P10 Metabase-like workload on $schema (4 tables): $(requests "$SANDBOX_URL") requests, $s s"
  done
}


# P11 a write through the FDW -> the sandbox's webhook -> the extension's receiver -> the
# replica row: seconds until the change is visible.
bench_p11() {
  receiver_on "$DB"
  start_sandbox "$BIN" --rps 5 --latency-ms 50 --orders 200 --webhook-url "$RECV_URL" --app-secret bench-secret; PIDS+=("$SANDBOX_PID")
  server p11 "$SANDBOX_URL" 5
  echo "ALTER SERVER p11 OPTIONS (ADD shop_domain 'sandbox.cyberbiz.co');
        ALTER USER MAPPING FOR CURRENT_USER SERVER p11 OPTIONS (ADD app_secret 'bench-secret');
        SELECT count(*) FROM cyberbiz_replicate('p11', 'p11_rep', ARRAY['orders'])" | q >/dev/null
  echo "CALL cyberbiz_sync('p11')" | q
  sleep 1.5  # the receiver reads App Secrets every second
  for i in 1 2 3 4 5; do
    id=$(echo "SELECT id FROM p11_rep.orders ORDER BY id OFFSET $i LIMIT 1" | q)
    # One session: the write, then a wait (a fresh snapshot every 5 ms) until the replica row
    # shows it; times taken by the database's clock.
    q <<SQL | awk -v i="$i" -F'|' '{ printf "P11 write -> webhook -> replica, try %d: %.3f s (the write itself %.3f s, then %.3f s to the replica)\n", i, $1, $2, $1 - $2 }'
SELECT clock_timestamp() AS t0 \gset
UPDATE p11.orders SET note = 'p11 $i' WHERE id = $id;
SELECT clock_timestamp() AS t1 \gset
DO \$\$ BEGIN
  WHILE NOT EXISTS (SELECT 1 FROM p11_rep.orders WHERE id = $id AND raw->>'note' = 'p11 $i') LOOP PERFORM pg_sleep(0.005); END LOOP;
END \$\$;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz);
SQL
  done
}

# P12 16 concurrent senders, 20,000 signed order deliveries (about 5 KB, 8 line items) to the
# receiver, plus 2,000 redeliveries and 500 wrong signatures: deliveries/s, latency, every
# acknowledged one stored, none twice, no forgery stored; once for a server without a replica
# (events only) and once for a server with a replica of 2,000 orders (each delivery also applied
# to the replica's orders and line items). R: the same (no replica) with the worker killed
# (kill -9) midway.
bench_p12() {
  receiver_on "$DB"
  start_sandbox "$BIN" --rps 0 --orders 2000; PIDS+=("$SANDBOX_PID")
  echo "DROP SERVER IF EXISTS p12 CASCADE; CREATE SERVER p12 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (shop_domain 'load.cyberbiz.co');
        CREATE USER MAPPING FOR CURRENT_USER SERVER p12 OPTIONS (api_token 'a.b.c', app_secret 'load-secret');
        DROP SERVER IF EXISTS p12r CASCADE; DROP SCHEMA IF EXISTS p12r_rep CASCADE; DELETE FROM cyberbiz_replicas WHERE server = 'p12r';
        CREATE SERVER p12r FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '$SANDBOX_URL', shop_domain 'replica.cyberbiz.co');
        CREATE USER MAPPING FOR CURRENT_USER SERVER p12r OPTIONS (api_token '$TOKEN', app_secret 'load-secret');
        SELECT count(*) FROM cyberbiz_replicate('p12r', 'p12r_rep', ARRAY['orders']);
        DELETE FROM cyberbiz_webhook_events WHERE server IN ('p12', 'p12r')" | q >/dev/null
  echo "CALL cyberbiz_sync('p12r')" | q
  sleep 1.5
  load() {  # domain, first id, acked file: one run of the sender
    "$BIN" send --url "$RECV_URL" --secret load-secret --domain "$1" --count 20000 --concurrency 16 \
      --duplicates 2000 --bad-signatures 500 --first-id "$2" --acked "$3"
  }
  check() {  # server, first id, acked file: acknowledged ids missing from the events table, and duplicates
    python3 tests/bench/p12_check.py "$@"
  }
  if [ "$which" != r ]; then
    out=$(load load.cyberbiz.co 80000000 /tmp/p12.acked)
    echo "P12 without a replica: $out"
    check p12 80000000 /tmp/p12.acked
    out=$(load replica.cyberbiz.co 85000000 /tmp/p12r.acked)
    echo "P12 with a replica of orders: $out"
    check p12r 85000000 /tmp/p12r.acked
    echo "    replica: $(echo "SELECT count(*) FROM p12r_rep.orders WHERE id BETWEEN 85000000 AND 85030000" | q) orders and $(echo "SELECT count(*) FROM p12r_rep.order_line_items WHERE order_id BETWEEN 85000000 AND 85030000" | q) line items from the load (expected 20,000 and 160,000)"
  fi
  if [ "$which" = all ] || [ "$which" = r ]; then
    (sleep 5; pid=$(pgrep -f "cyberbiz_fdw webhook receiver" | head -1); echo "    R: kill -9 $pid (the receiver) at 5 s"; kill -9 "$pid") &
    out=$(load load.cyberbiz.co 90000000 /tmp/r.acked)
    echo "R   $out"
    check p12 90000000 /tmp/r.acked
  fi
}

# P13 1,000 peers each holding a nearly complete 2 MB body at the receiver, 20 real deliveries
# meanwhile: peers held and refused, the receiver's private memory, the deliveries' answers.
bench_p13() {
  receiver_on "$DB"
  echo "DROP SERVER IF EXISTS p13 CASCADE; CREATE SERVER p13 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (shop_domain 'p13.cyberbiz.co');
        CREATE USER MAPPING FOR CURRENT_USER SERVER p13 OPTIONS (api_token 'a.b.c', app_secret 'p13-secret')" | q >/dev/null
  sleep 1.5  # the receiver reads App Secrets every second
  pid=$(echo "SELECT pid FROM cyberbiz_stat_receiver" | q)
  python3 tests/bench/p13_peers.py 127.0.0.1 "$RECV_PORT" "$pid" p13-secret p13.cyberbiz.co
  echo "    refused_busy: $(echo "SELECT refused_busy FROM cyberbiz_stat_receiver" | q)"
  echo "DROP SERVER p13 CASCADE" | q >/dev/null
}

# V1 cyberbiz_verify of an equal replica of N orders (BENCH_V_ORDERS, default 100,000) at 5
# requests/s: requests and seconds (target <= 30 requests). V2 the same after 3 orders are lost
# from the replica and 2 deleted in the shop (no webhook): requests to find and repair all 5
# (target <= 40 + 10 x 5), and a verification afterwards. The replica is filled at full speed
# first (the sandbox unlimited, the server at 1,000 requests/s), then held to 5 requests/s.
bench_v() {
  N=${BENCH_V_ORDERS:-100000}
  start_sandbox "$BIN" --rps 0 --latency-ms 50 --orders "$N" --customers 200 --products 50; PIDS+=("$SANDBOX_PID")
  server v "$SANDBOX_URL" 1000
  echo "SELECT count(*) FROM cyberbiz_replicate('v', 'v_rep', ARRAY['orders'])" | q >/dev/null
  echo "CALL cyberbiz_sync('v')" | q
  echo "ALTER SERVER v OPTIONS (SET requests_per_second '5')" | q
  verify() {
    clear "$SANDBOX_URL"
    s=$(secs "CALL cyberbiz_verify('v')")
    echo "$1: $(requests "$SANDBOX_URL") requests, $s s: $(echo "SELECT format('%s orders in the shop, %s in the replica, %s repaired: %s', api_rows, replica_rows, repaired, verify_result) FROM cyberbiz_replica_status WHERE server = 'v' AND table_name = 'orders'" | q)"
  }
  verify "V1 verify of an equal replica of $N orders"
  pick() { echo "SELECT string_agg(id::text, ',') FROM (SELECT id FROM v_rep.orders ORDER BY updated_at, id OFFSET $1 LIMIT 1) x" | q; }
  lost="$(pick $((N / 10))),$(pick $((N / 2))),$(pick $((N - 100)))"
  echo "DELETE FROM v_rep.orders WHERE id IN ($lost); DELETE FROM v_rep.order_line_items WHERE order_id IN ($lost)" | q
  for k in $((N / 4)) $((N * 3 / 4)); do
    curl -s -X POST "$SANDBOX_URL/__sandbox/remove?table=orders&id=$(pick "$k")" >/dev/null
  done
  verify "V2 verify after 3 orders lost locally and 2 deleted in the shop"
  verify "V2 afterwards"
}

# Many shops (issue 19). The scheduler alone (no webhooks) keeps every shop's replica of orders,
# customers and products, each shop a server with a token of its own (the sandbox holds each
# token to 5 requests/s, 150 ms latency), cyberbiz.sync_interval = 1 s, one sync worker per shop.
# shops_on N: the workers' settings for N shops (conf.d; a restart, through receiver_on).
shops_on() {
  printf "cyberbiz.sync_interval = %s\ncyberbiz.sync_workers = %s\nmax_worker_processes = %s\n" "${2:-1}" "$1" $(($1 + 16)) >/etc/postgresql/15/main/conf.d/cyberbiz_fdw_shops.conf
  receiver_on "$DB"
}
# shops_off REGEX: the scheduler off again, and the replicated servers whose names match REGEX
# dropped with their replicas (so that a later benchmark's shops sync alone).
shops_off() {
  rm -f /etc/postgresql/15/main/conf.d/cyberbiz_fdw_shops.conf
  echo "ALTER SYSTEM SET cyberbiz.sync_interval = 0; SELECT pg_reload_conf();
        DO \$\$ DECLARE r record; BEGIN
          FOR r IN SELECT server, schema_name FROM cyberbiz_replicas WHERE server::text ~ '$1' LOOP
            EXECUTE format('DROP SCHEMA %I CASCADE', r.schema_name);
            DELETE FROM cyberbiz_replicas WHERE server = r.server;
            EXECUTE format('DROP SERVER %I CASCADE', r.server);
          END LOOP; END \$\$; ALTER SYSTEM RESET cyberbiz.sync_interval; SELECT pg_reload_conf()" | q >/dev/null
}
# shop NAME URL TTL: a server on URL with a token of its own (TTL seconds: tokens differ by it)
# and a replica of orders, customers and products in schema NAME_rep.
shop() {
  echo "CREATE SERVER $1 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '$2', requests_per_second '5');
        CREATE USER MAPPING FOR CURRENT_USER SERVER $1 OPTIONS (api_token '$("$BIN" token --ttl-secs "$3")');
        SELECT count(*) FROM cyberbiz_replicate('$1', '$1_rep', ARRAY['orders', 'customers', 'products'])" | q >/dev/null
}
# Sleeps 1 to 3 s, at random: a change lands anywhere between two rounds (after a fixed pause it
# would land at the same point of the 1 s cycle each time, and one shop's times would all be
# the same).
pause() { sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 1 + 2 * r / 32768 }')"; }
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
# Waits (10 minutes at most) until every replicated server has ended its first syncs, and then
# until each has had a round since (a first sync's end leaves its table behind by the whole
# first sync: it holds every change made before the first sync began).
first_syncs_done() {
  echo "DO \$\$ BEGIN
    FOR i IN 1..6000 LOOP
      EXIT WHEN NOT EXISTS (SELECT 1 FROM cyberbiz_sync_schedule WHERE tables_in_first_sync > 0 OR behind IS NULL);
      PERFORM pg_sleep(0.1);
    END LOOP;
    IF EXISTS (SELECT 1 FROM cyberbiz_sync_schedule WHERE tables_in_first_sync > 0 OR behind IS NULL) THEN
      RAISE EXCEPTION 'first syncs not done after 10 minutes';
    END IF;
    FOR i IN 1..600 LOOP
      -- (clock_timestamp(): the view's behind counts from now(), the start of this DO)
      EXIT WHEN NOT EXISTS (SELECT 1 FROM cyberbiz_replica_state s
                            WHERE s.parent IS NULL AND s.fresh_as_of < clock_timestamp() - 2 * cyberbiz_sync_every() - interval '1 s');
      PERFORM pg_sleep(0.1);
    END LOOP;
  END \$\$" | q
}
# Seconds from an order changed in the shop (every shop: one sandbox) until every replica of the
# servers matching LIKE pattern $1 holds it, the scheduler alone.
until_every_replica() {
  q <<SQL
SELECT set_config('bench.t0', date_trunc('second', clock_timestamp())::text, false), set_config('bench.c0', clock_timestamp()::text, false) \g /dev/null
\! curl -s -X POST "$SANDBOX_URL/__sandbox/touch?count=1" >/dev/null
DO \$\$ DECLARE probe text; ok boolean; BEGIN
  SELECT 'SELECT ' || string_agg(format('coalesce((SELECT max(updated_at) FROM %I.orders) >= %L::timestamptz, false)', schema_name, current_setting('bench.t0')), ' AND ')
  INTO probe FROM cyberbiz_replicas WHERE server::text LIKE '$1';
  FOR i IN 1..6000 LOOP
    EXECUTE probe INTO ok;
    EXIT WHEN ok;
    PERFORM pg_sleep(0.02);
  END LOOP;
  IF NOT ok THEN RAISE EXCEPTION 'the change is not in every replica after 2 minutes'; END IF;
END \$\$;
SELECT round(extract(epoch FROM clock_timestamp() - current_setting('bench.c0')::timestamptz)::numeric, 2);
SQL
}

# P13 (issue 19) a change made in every shop: seconds until every replica shows it, for one shop
# alone and then for BENCH_SHOPS (default 50) shops; 3 tries each (target: <= 2 x one shop).
bench_shops() {
  N=${BENCH_SHOPS:-50}
  trap 'shops_off "^m[0-9]+\$"; kill "${PIDS[@]}" 2>/dev/null || true' EXIT
  start_sandbox "$BIN" --rps 5 --latency-ms 150 --orders 200 --customers 100 --products 30; PIDS+=("$SANDBOX_PID")
  shops_on "$N"
  shop m1 "$SANDBOX_URL" 86401
  first_syncs_done
  tries=()
  for i in 1 2 3 4 5 6 7 8; do
    pause
    tries+=("$(until_every_replica 'm1')")
  done
  echo "P13 1 shop: a change in the shop is in its replica after (s): ${tries[*]}; mean $(mean "${tries[@]}")"
  t0=$(date +%s%N)
  for i in $(seq 2 "$N"); do shop "m$i" "$SANDBOX_URL" $((86400 + i)); done
  first_syncs_done
  echo "    $N shops replicated; first syncs of the $((N - 1)) added ones done after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  tries=()
  for i in 1 2 3 4 5 6 7 8; do
    pause
    tries+=("$(until_every_replica 'm%')")
  done
  echo "P13 $N shops: a change in every shop is in every replica after (s): ${tries[*]}; mean $(mean "${tries[@]}")"
  echo "SELECT format('    rounds: %s s on average, %s s at most; behind: %s at most', round(avg(last_round_seconds)::numeric, 2), round(max(last_round_seconds)::numeric, 2), max(behind)) FROM cyberbiz_sync_schedule" | q
  shops_off '^m[0-9]+$'
}

# P14 (issue 19) one shop's first sync of BENCH_P14_ORDERS (default 100,000) orders at 5
# requests/s while BENCH_P14_SHOPS (default 20; 0: the first sync alone, by the scheduler) other
# shops change (an order every few seconds), sync_interval 2 s: how
# far behind those 20 replicas get (cyberbiz_sync_schedule.behind, sampled twice a second;
# target <= 2 x sync_interval), seconds until a change is in all 20, and the first sync's pace.
bench_p14() {
  N=${BENCH_P14_ORDERS:-100000}
  K=${BENCH_P14_SHOPS:-20}
  sampler=
  trap 'kill $sampler 2>/dev/null || true; shops_off "^(n[0-9]+|big)\$"; echo "DROP TABLE IF EXISTS p14_behind" | q; kill "${PIDS[@]}" 2>/dev/null || true' EXIT
  start_sandbox "$BIN" --rps 5 --latency-ms 50 --orders "$N" --customers 200 --products 50; PIDS+=("$SANDBOX_PID")
  BIG_URL=$SANDBOX_URL
  start_sandbox "$BIN" --rps 5 --latency-ms 150 --orders 200 --customers 100 --products 30; PIDS+=("$SANDBOX_PID")
  shops_on $((K + 1)) 2
  for i in $(seq 1 "$K"); do shop "n$i" "$SANDBOX_URL" $((86400 + i)); done
  [ "$K" -eq 0 ] || first_syncs_done
  echo "CREATE SERVER big FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '$BIG_URL', requests_per_second '5');
        CREATE USER MAPPING FOR CURRENT_USER SERVER big OPTIONS (api_token '$TOKEN');
        CREATE TABLE p14_behind (at timestamptz DEFAULT clock_timestamp(), behind interval);
        SELECT count(*) FROM cyberbiz_replicate('big', 'big_rep', ARRAY['orders'])" | q >/dev/null
  t0=$(date +%s%N)
  (while [ "$(echo "SELECT tables_in_first_sync FROM cyberbiz_sync_schedule WHERE server = 'big'" | q)" != 0 ]; do
     echo "INSERT INTO p14_behind (behind) SELECT max(behind) FROM cyberbiz_sync_schedule WHERE server::text LIKE 'n%'" | q
     sleep 0.5
   done) &
  sampler=$!
  arrivals=()
  while kill -0 "$sampler" 2>/dev/null; do
    [ "$K" -eq 0 ] || arrivals+=("$(until_every_replica 'n%')")
    sleep 3
  done
  s=$(awk -v ns="$(( $(date +%s%N) - t0 ))" 'BEGIN { printf "%.1f", ns / 1e9 }')
  rows=$(echo "SELECT count(*) FROM big_rep.orders" | q)
  echo "P14 first sync of $rows orders (the shop: $N) by the scheduler: $s s, $(awk -v r="$rows" -v s="$s" 'BEGIN { printf "%.1f%%", 100 * r / s / 250 }') of the 250 rows/s bound"
  echo "SELECT format('P14 meanwhile $K shops at sync_interval 2 s: behind at most %s (%s samples; target <= 4 s), %s on average; the 3 largest: %s', max(behind), count(*), avg(behind),
          (SELECT string_agg(b::text, ', ') FROM (SELECT behind b FROM p14_behind WHERE behind IS NOT NULL ORDER BY 1 DESC LIMIT 3) x)) FROM p14_behind" | q
  echo "P14 a change in the $K shops, in all their replicas after (s): ${arrivals[*]}"
}

# P15 (issue 19) logical replication: a webhook's commit on the ingest cluster -> the row on a
# subscribing cluster, 20 tries (tests/replication.sh).
bench_p15() {
  P15_TRIES=20 SANDBOX_BIN="$BIN" bash tests/replication.sh
}

# The benchmarks asked for, in order (all: every one; p9 runs with p8, r with p12).
case "$which" in
  all) for b in p1 p2 p6 w1 p3 p4 p5 p8 p10 p11 p12 p13 v shops p14 p15; do "bench_$b"; done ;;
  p9) bench_p8 ;;
  r) bench_p12 ;;
  shops) bench_shops ;;
  p14) bench_p14 ;;
  p15) bench_p15 ;;
  p1 | p2 | p3 | p4 | p5 | p6 | w1 | p8 | p10 | p11 | p12 | p13 | v) "bench_$which" ;;
  *) echo "usage: bash tests/bench.sh [p1|p2|p3|p4|p5|p6|w1|p8|p9|p10|p11|p12|p13|r|v|shops|p14|p15|all]" >&2; exit 2 ;;
esac
