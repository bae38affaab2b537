-- Many shops: the scheduler runs each shop's rounds in a sync worker of its own, up to
-- cyberbiz.sync_workers at once (sql/schedule.sql). A shop whose API hangs (a sandbox that
-- answers after 20 s) holds its own worker only: with one worker allowed, every other shop
-- waits (its round is due); with more, another shop is synced round after round meanwhile.
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SELECT pg_temp.sandbox_server('hung_shop', 'cyberbiz_test.slow_url'), pg_temp.sandbox_server('quick_shop', 'cyberbiz_test.api_url');
SELECT count(*) AS tables FROM cyberbiz_replicate('hung_shop', 'hung_replica', ARRAY['customers']);
SELECT count(*) AS tables FROM cyberbiz_replicate('quick_shop', 'quick_replica', ARRAY['customers']);
-- The other replicas of this database (earlier tests') are left out: as if their last round
-- began an hour from now, their next is not due during this test.
UPDATE cyberbiz_replicas SET round_started_at = now() + interval '1 hour'
WHERE server NOT IN ('hung_shop', 'quick_shop');
SELECT server, state, worker_pid IS NULL AS no_worker, next_sync_at, tables, tables_in_first_sync, behind
FROM cyberbiz_sync_schedule WHERE server IN ('hung_shop', 'quick_shop') ORDER BY 1;
ALTER SYSTEM SET cyberbiz.sync_workers = 1;
ALTER SYSTEM SET cyberbiz.sync_interval = 1;
SELECT pg_reload_conf();
-- The one worker claims hung_shop's round first (never synced, by name) and waits on its API.
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN (SELECT state = 'syncing' FROM cyberbiz_sync_schedule WHERE server = 'hung_shop');
        PERFORM pg_sleep(0.25);
    END LOOP;
    PERFORM pg_sleep(3);
END $$;
SELECT server, state, worker_pid IS NOT NULL AS has_worker, behind IS NULL AS never_synced
FROM cyberbiz_sync_schedule WHERE server IN ('hung_shop', 'quick_shop') ORDER BY 1;
SELECT count(*) AS sync_workers FROM pg_stat_activity WHERE backend_type = 'cyberbiz_fdw sync worker';
-- Room for more: quick_shop's first sync, then its later rounds, each second, while
-- hung_shop's round still waits.
ALTER SYSTEM SET cyberbiz.sync_workers = 4;
SELECT pg_reload_conf();
CREATE TEMP TABLE hung AS SELECT worker_pid FROM cyberbiz_sync_schedule WHERE server = 'hung_shop';
CREATE TEMP TABLE seen (fresh_as_of timestamptz);
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        INSERT INTO seen SELECT fresh_as_of FROM cyberbiz_replica_state WHERE server = 'quick_shop' AND fresh_as_of IS NOT NULL;
        EXIT WHEN (SELECT count(DISTINCT fresh_as_of) >= 3 FROM seen);
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT count(DISTINCT fresh_as_of) >= 3 AS quick_shop_synced_round_after_round FROM seen;
SELECT s.server, s.state, s.worker_pid = h.worker_pid AS same_worker_still FROM cyberbiz_sync_schedule s, hung h WHERE s.server = 'hung_shop';
SELECT server, last_round_seconds < 5 AS quick_rounds, next_sync_at > last_round_started_at AS next_is_later, behind < interval '5 s' AS behind_by_little
FROM cyberbiz_sync_schedule WHERE server = 'quick_shop';
SELECT table_name, rows > 0 AS has_rows, state, next_sync_at IS NOT NULL AS next_sync_known, last_round_seconds IS NOT NULL AS round_timed
FROM cyberbiz_replica_status WHERE server = 'quick_shop';
SELECT count(*) <= 4 AS within_the_cap FROM pg_stat_activity WHERE backend_type = 'cyberbiz_fdw sync worker';
-- A shop whose first sync fails (the API refuses its token: 401) is tried again once per
-- scheduled round (each second here), not in a loop; its status says why.
SELECT pg_temp.sandbox_server('refused_shop', 'cyberbiz_test.api_url');
ALTER USER MAPPING FOR CURRENT_USER SERVER refused_shop OPTIONS (SET api_token 'not.a.token');
CREATE TEMP TABLE since AS SELECT extract(epoch FROM clock_timestamp()) AS at;
SELECT count(*) AS tables FROM cyberbiz_replicate('refused_shop', 'refused_replica', ARRAY['orders']);
SELECT pg_sleep(4);
CREATE TEMP TABLE api_log (body text);
DO $$
BEGIN
    EXECUTE format('COPY api_log FROM PROGRAM %L WITH (FORMAT csv, QUOTE E''\x01'', DELIMITER E''\x02'')',
                   'curl -s ' || current_setting('cyberbiz_test.api_url') || '/__sandbox/requests');
END $$;
SELECT count(*) BETWEEN 2 AND 8 AS refused_once_a_round FROM api_log, jsonb_array_elements(body::jsonb) e, since
WHERE (e->>'status')::int = 401 AND (e->>'timestamp')::float8 >= since.at;
SELECT table_name, state, last_error IS NOT NULL AS error_shown FROM cyberbiz_replica_status WHERE server = 'refused_shop' ORDER BY 1;
-- Off: the workers end after their rounds; the hung one is stopped (a sync step stops at its
-- next interrupt check, its transaction rolled back).
ALTER SYSTEM RESET cyberbiz.sync_interval;
ALTER SYSTEM RESET cyberbiz.sync_workers;
SELECT pg_reload_conf();
SELECT pg_terminate_backend(worker_pid) AS stopped FROM hung;
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'cyberbiz_fdw sync worker');
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT count(*) AS sync_workers FROM pg_stat_activity WHERE backend_type = 'cyberbiz_fdw sync worker';
SELECT server, state, worker_pid FROM cyberbiz_sync_schedule WHERE server IN ('hung_shop', 'quick_shop', 'refused_shop') ORDER BY 1;
UPDATE cyberbiz_replicas SET round_started_at = NULL;
