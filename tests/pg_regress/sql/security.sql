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

-- cyberbiz_replicate trusts nothing that exists: a schema another role owns, or a relation it
-- did not create, is an error, never written into.
SET ROLE mallory;
CREATE SCHEMA mallory_rep;
CREATE TABLE mallory_rep.customers (id bigint PRIMARY KEY);
RESET ROLE;
SELECT pg_temp.sandbox_server('sec_other', 'cyberbiz_test.hooks_url');
SELECT cyberbiz_replicate('sec_other', 'mallory_rep', ARRAY['customers']);
CREATE SCHEMA own_rep;
CREATE TABLE own_rep.customers (id bigint PRIMARY KEY);
SELECT cyberbiz_replicate('sec_other', 'own_rep', ARRAY['customers']);
DROP TABLE own_rep.customers;
SELECT cyberbiz_replicate('sec_other', 'own_rep', ARRAY['customers']) AS into_a_schema_of_ones_own;
-- A replica table whose owner is not a superuser (an administrator gave it away): the
-- superuser's workers write into it as its owner, in a security-restricted operation, so the
-- owner's trigger runs with the owner's rights only.
CREATE SCHEMA mallory_s AUTHORIZATION mallory;
GRANT USAGE ON SCHEMA sec_replica TO mallory;
ALTER TABLE sec_replica.customers OWNER TO mallory;
SET ROLE mallory;
CREATE TABLE mallory_s.seen (who name, superuser boolean);
CREATE FUNCTION mallory_s.trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    EXCEPTION WHEN others THEN NULL;
    END;
    INSERT INTO mallory_s.seen SELECT current_user, rolsuper FROM pg_roles WHERE rolname = 'mallory';
    RETURN NEW;
END $$;
CREATE TRIGGER t BEFORE UPDATE ON sec_replica.customers FOR EACH ROW EXECUTE FUNCTION mallory_s.trg();
RESET ROLE;
UPDATE sec.customers SET note = 'a trigger sees this' WHERE id = (SELECT max(id) FROM sec.customers);
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM sec_replica.customers WHERE raw->>'note' = 'a trigger sees this');
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT count(*) AS applied FROM sec_replica.customers WHERE raw->>'note' = 'a trigger sees this';
SELECT DISTINCT who, superuser FROM mallory_s.seen;
SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory';
ALTER TABLE sec_replica.customers OWNER TO CURRENT_USER;
DROP TRIGGER t ON sec_replica.customers;
REVOKE USAGE ON SCHEMA sec_replica FROM mallory;

-- A read-only BI role (README): USAGE on the replica's schema and SELECT on its tables. It reads
-- the replica, and no token, App Secret or webhook body.
SET client_min_messages = warning;
DROP ROLE IF EXISTS bi_reader;
RESET client_min_messages;
CREATE ROLE bi_reader;
GRANT USAGE ON SCHEMA sec_replica TO bi_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA sec_replica TO bi_reader;
SET ROLE bi_reader;
SELECT count(*) > 0 AS reads_the_replica FROM sec_replica.customers;
SELECT count(*) FROM cyberbiz_webhook_events;
SELECT count(*) FROM cyberbiz_replica_state;
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'sec';
SELECT count(*) FROM sec.customers;
RESET ROLE;
REVOKE ALL ON SCHEMA sec_replica FROM bi_reader;
REVOKE ALL ON ALL TABLES IN SCHEMA sec_replica FROM bi_reader;
DROP ROLE bi_reader;

-- A relation put in the place of a replica table is never written or read: the sync refuses,
-- the status view does not run it; the table put back (the same oid) syncs again.
ALTER TABLE sec_replica.customers RENAME TO customers_kept;
CREATE VIEW sec_replica.customers AS SELECT * FROM sec_replica.customers_kept;
CALL cyberbiz_sync('sec');
SELECT table_name, rows FROM cyberbiz_replica_status WHERE server = 'sec';
DROP VIEW sec_replica.customers;
ALTER TABLE sec_replica.customers_kept RENAME TO customers;
CALL cyberbiz_sync('sec');
SELECT table_name, rows > 0 AS has_rows, last_error FROM cyberbiz_replica_status WHERE server = 'sec';

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
-- Workers that run as a superuser refuse a schema that other roles may create objects in.
GRANT CREATE ON SCHEMA public TO mallory;
SELECT pg_sleep(1.2);
DELETE FROM health;
:copy;
SELECT line FROM health;
REVOKE CREATE ON SCHEMA public FROM mallory;

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
DO $$
DECLARE s name;
BEGIN
    FOR s IN SELECT source_schema FROM cyberbiz_replicas WHERE server IN ('sec', 'sec_other') LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', s);
    END LOOP;
END $$;
DROP SCHEMA mallory_rep CASCADE;
DROP SCHEMA mallory_s CASCADE;
REVOKE CREATE ON DATABASE cyberbiz_fdw_regress FROM mallory;
DROP ROLE mallory;
DROP SCHEMA own_rep CASCADE;
DELETE FROM cyberbiz_replica_state WHERE server = 'sec_other';
DELETE FROM cyberbiz_replicas WHERE server = 'sec_other';
DROP SERVER sec_other CASCADE;
DROP SCHEMA sec CASCADE;
DROP SCHEMA sec_replica CASCADE;
DELETE FROM cyberbiz_replica_state WHERE server = 'sec';
DELETE FROM cyberbiz_replicas WHERE server = 'sec';
DELETE FROM cyberbiz_webhook_events WHERE server = 'sec';
DROP SERVER sec CASCADE;
