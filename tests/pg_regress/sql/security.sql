-- Nothing a non-superuser can shape runs as a superuser (issue 17). A role that may create
-- schemas in the database (as a database owner may) creates schema "postgres", first on the
-- default search_path of the bootstrap superuser (as "$user"), holding functions named like
-- the extension's with the argument types 0.3.0's workers and procedures passed. Then the
-- receiver ingests a webhook, the sync scheduler runs a round, and a superuser CALLs
-- cyberbiz_sync: none of them runs any of those functions, and the role stays what it was.
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS postgres CASCADE;
DROP ROLE IF EXISTS mallory;
CREATE ROLE mallory LOGIN;
GRANT CREATE ON DATABASE cyberbiz_fdw_regress TO mallory;
RESET client_min_messages;
SET ROLE mallory;
CREATE SCHEMA postgres;
CREATE TABLE postgres.hijacked (fn text);
CREATE FUNCTION postgres.pwn(fn text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO postgres.hijacked VALUES (fn);
    EXECUTE 'ALTER ROLE mallory SUPERUSER';
END $$;
CREATE FUNCTION postgres.cyberbiz_replica_step(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('replica_step'); RETURN true; END $$;
CREATE FUNCTION postgres.cyberbiz_sync_step(name, text, timestamptz, boolean, OUT done boolean, OUT error text) LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('sync_step'); done := true; END $$;
CREATE FUNCTION postgres.cyberbiz_sync_step(text, text, timestamptz, boolean, OUT done boolean, OUT error text) LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('sync_step text'); done := true; END $$;
CREATE FUNCTION postgres.cyberbiz_sync_tables() RETURNS TABLE (server_name name, table_name text) LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('sync_tables'); END $$;
CREATE FUNCTION postgres.cyberbiz_ingest_webhook(text, text, text, text, text) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('ingest_webhook'); RETURN 1; END $$;
CREATE FUNCTION postgres.cyberbiz_replica_apply_event(name, text, boolean, jsonb) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('apply_event'); RETURN true; END $$;
CREATE FUNCTION postgres.cyberbiz_taipei(text) RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('taipei'); RETURN NULL; END $$;
CREATE FUNCTION postgres.cyberbiz_fdw_decode(text, text, jsonb) RETURNS SETOF record LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('decode'); END $$;
CREATE FUNCTION postgres.format(text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM postgres.pwn('format'); RETURN ''; END $$;
RESET ROLE;

SELECT pg_temp.sandbox_server('sec', 'cyberbiz_test.hooks_url', $$, shop_domain 'sandbox.cyberbiz.co', requests_per_second '1000'$$,
                               $$, app_secret 'regress-app-secret'$$);
CREATE SCHEMA sec;
IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (customers) FROM SERVER sec INTO sec;
SELECT count(*) AS tables FROM cyberbiz_replicate('sec', 'sec_replica', ARRAY['customers']);

-- A superuser's own CALL, with the default search_path.
SHOW search_path;
CALL cyberbiz_sync('sec');
SELECT (SELECT count(*) FROM sec_replica.customers) = (SELECT count(*) FROM sec.customers) AS call_synced;

-- The receiver: a write through the FDW makes the sandbox post a signed webhook.
SELECT pg_sleep(1.5);
UPDATE sec.customers SET note = 'from the security test' WHERE id = (SELECT min(id) FROM sec.customers);
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM sec_replica.customers WHERE raw->>'note' = 'from the security test');
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT event, resource FROM cyberbiz_webhook_events WHERE server = 'sec';
SELECT count(*) AS applied_by_the_receiver FROM sec_replica.customers WHERE raw->>'note' = 'from the security test';

-- The scheduler: a round syncs the replica again.
CREATE TEMP TABLE before AS SELECT fresh_as_of FROM cyberbiz_replica_state WHERE server = 'sec' AND table_name = 'customers';
ALTER SYSTEM SET cyberbiz.sync_interval = 1;
SELECT pg_reload_conf();
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        EXIT WHEN (SELECT s.fresh_as_of > b.fresh_as_of FROM cyberbiz_replica_state s, before b WHERE s.server = 'sec' AND s.table_name = 'customers');
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT s.fresh_as_of > b.fresh_as_of AS synced_by_the_scheduler FROM cyberbiz_replica_state s, before b WHERE s.server = 'sec' AND s.table_name = 'customers';
ALTER SYSTEM RESET cyberbiz.sync_interval;
SELECT pg_reload_conf();

-- Nothing of the role's ran.
SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory';
SELECT count(*) AS hijacked FROM postgres.hijacked;
-- Every function of the extension has its search_path; the procedures (which COMMIT, and so
-- cannot have one) name every object with its schema.
SELECT p.prokind, count(*) FILTER (WHERE array_to_string(p.proconfig, ',') LIKE '%search_path=pg_catalog, public, pg_temp%') AS with_search_path, count(*)
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'cyberbiz_fdw')
GROUP BY 1 ORDER BY 1;
-- (This session's own search_path finds the role's functions: format(text, text) would now be
-- the role's, as the role meant. Gone before anything here calls format.)
SET client_min_messages = warning;
DROP SCHEMA postgres CASCADE;
RESET client_min_messages;

-- Worker lifecycle: a terminated receiver or scheduler comes back (5 s), and the view says the
-- receiver is down meanwhile.
CREATE TEMP TABLE workers AS
SELECT (SELECT pid FROM cyberbiz_stat_receiver) AS receiver, (SELECT pid FROM pg_stat_activity WHERE backend_type = 'cyberbiz_fdw sync scheduler') AS scheduler;
SELECT receiver IS NOT NULL AS receiver_up, scheduler IS NOT NULL AS scheduler_up FROM workers;
SELECT pg_terminate_backend(receiver) AND pg_terminate_backend(scheduler) AS terminated FROM workers;
SELECT pg_sleep(0.5);
SELECT pid IS NULL AS receiver_down, listening_since IS NULL AS not_listening FROM cyberbiz_stat_receiver;
DO $$
BEGIN
    FOR i IN 1..60 LOOP
        EXIT WHEN (SELECT listening_since IS NOT NULL FROM cyberbiz_stat_receiver)
              AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'cyberbiz_fdw sync scheduler');
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT r.pid <> w.receiver AS receiver_restarted, r.listening_since IS NOT NULL AS listening, r.listen_error
FROM cyberbiz_stat_receiver r, workers w;
SELECT a.pid <> w.scheduler AS scheduler_restarted FROM pg_stat_activity a, workers w WHERE a.backend_type = 'cyberbiz_fdw sync scheduler';
-- /healthz says whether an ingest would succeed.
CREATE TEMP TABLE health (line text);
SELECT format('COPY health FROM PROGRAM %L', 'curl -s http://' || current_setting('cyberbiz.webhook_listen') || '/healthz') AS copy \gset
:copy;
SELECT line FROM health;

-- A failed bind (the address of this very cluster) is shown, and tried again every 5 s; the
-- old address comes back on reload.
SELECT format('ALTER SYSTEM SET cyberbiz.webhook_listen = %L', '127.0.0.1:' || current_setting('port')) AS taken \gset
:taken;
SELECT pg_reload_conf();
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        EXIT WHEN (SELECT listen_error IS NOT NULL FROM cyberbiz_stat_receiver);
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT listening_since IS NULL AS not_listening, listen_error FROM cyberbiz_stat_receiver;
ALTER SYSTEM RESET cyberbiz.webhook_listen;
SELECT pg_reload_conf();
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        EXIT WHEN (SELECT listening_since IS NOT NULL FROM cyberbiz_stat_receiver);
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT listening_since IS NOT NULL AS listening, listen_error FROM cyberbiz_stat_receiver;

-- pg_dump keeps the events and where their id sequence stands: after a restore into a new
-- database, the next delivery gets the next id (0.3.0: duplicate key, event 1).
SET client_min_messages = warning;
DROP DATABASE IF EXISTS cyberbiz_dump_src;
DROP DATABASE IF EXISTS cyberbiz_dump_dst;
CREATE DATABASE cyberbiz_dump_src;
CREATE DATABASE cyberbiz_dump_dst;
RESET client_min_messages;
\c cyberbiz_dump_src
SET client_min_messages = warning;
CREATE EXTENSION cyberbiz_fdw;
CREATE EXTENSION pgcrypto;
RESET client_min_messages;
CREATE SERVER shop FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url 'http://127.0.0.1:9', shop_domain 'dump.cyberbiz.co');
CREATE USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (api_token 'header.payload.signature', app_secret 'dump-secret');
CREATE FUNCTION ingest(body text, event text) RETURNS bigint LANGUAGE sql AS $$
    SELECT cyberbiz_ingest_webhook(body, event, encode(hmac(body, 'dump-secret', 'sha256'), 'hex'), 'dump.cyberbiz.co')
$$;
SELECT ingest('{"id": 1, "name": "A", "updated_at": "2026-11-02 09:00:00"}', 'customers/create') AS first,
       ingest('{"id": 2, "name": "B", "updated_at": "2026-11-02 09:00:00"}', 'customers/create') AS second;
\! pg_dump -d cyberbiz_dump_src | psql -q -X -d cyberbiz_dump_dst >/dev/null 2>&1
\c cyberbiz_dump_dst
SELECT id, event, resource_id FROM cyberbiz_webhook_events ORDER BY id;
SELECT ingest('{"id": 3, "name": "C", "updated_at": "2026-11-02 09:00:00"}', 'customers/create') AS after_restore;
\c cyberbiz_fdw_regress
SET client_min_messages = warning;
DROP DATABASE cyberbiz_dump_src;
DROP DATABASE cyberbiz_dump_dst;
REVOKE CREATE ON DATABASE cyberbiz_fdw_regress FROM mallory;
DROP ROLE mallory;
DROP SCHEMA sec CASCADE;
DROP SCHEMA sec_replica CASCADE;
DELETE FROM cyberbiz_replica_state WHERE server = 'sec';
DELETE FROM cyberbiz_replicas WHERE server = 'sec';
DELETE FROM cyberbiz_webhook_events WHERE server = 'sec';
DROP SERVER sec CASCADE;
