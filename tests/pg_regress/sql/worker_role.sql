-- The workers as a role that is not a superuser (cyberbiz.webhook_role), given exactly what the
-- README's recipe gives: LOGIN, cyberbiz_grant_worker, a user mapping per server, and the
-- replica it keeps. /healthz says what is missing until then. The test restarts the cluster
-- twice (the setting takes a restart).
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SET client_min_messages = warning;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cyberbiz_worker') THEN
        EXECUTE 'DROP OWNED BY cyberbiz_worker CASCADE';
        EXECUTE 'DROP ROLE cyberbiz_worker';
    END IF;
END $$;
RESET client_min_messages;
CREATE ROLE cyberbiz_worker LOGIN;
ALTER SYSTEM SET cyberbiz.webhook_role = 'cyberbiz_worker';
\! pg_ctlcluster 15 main restart >/dev/null 2>&1
\c cyberbiz_fdw_regress
\i :setup
CREATE TEMP TABLE health (line text);
CREATE FUNCTION pg_temp.health() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(1.2); -- the receiver reads what it may do once a second
    DELETE FROM health;
    EXECUTE format('COPY health FROM PROGRAM %L', 'curl -s http://' || current_setting('cyberbiz.webhook_listen') || '/healthz');
    RETURN (SELECT string_agg(line, ' ') FROM health);
END $$;
SELECT usename, backend_type FROM pg_stat_activity WHERE backend_type LIKE 'cyberbiz_fdw%' ORDER BY 2;
-- Not yet allowed, then allowed but without an App Secret, then ready.
SELECT pg_temp.health() AS before_the_grants;
SELECT count(*) AS granted_on FROM cyberbiz_grant_worker('cyberbiz_worker');
SELECT pg_temp.health() AS without_a_mapping;
SELECT pg_temp.sandbox_server('wr', 'cyberbiz_test.hooks_url', $$, shop_domain 'sandbox.cyberbiz.co', requests_per_second '1000'$$);
GRANT USAGE ON FOREIGN SERVER wr TO cyberbiz_worker;
SELECT format('CREATE USER MAPPING FOR cyberbiz_worker SERVER wr OPTIONS (api_token %L, app_secret %L)',
              current_setting('cyberbiz_test.api_token'), 'regress-app-secret') AS mapping \gset
:mapping;
-- The replica it keeps is its own (it may create schemas only while making it).
GRANT CREATE ON DATABASE cyberbiz_fdw_regress TO cyberbiz_worker;
SET ROLE cyberbiz_worker;
SELECT count(*) AS tables FROM cyberbiz_replicate('wr', 'wr_replica', ARRAY['customers']);
RESET ROLE;
REVOKE CREATE ON DATABASE cyberbiz_fdw_regress FROM cyberbiz_worker;
SELECT pg_temp.health() AS ready;

-- The scheduler fills it, as the worker's role.
CREATE SCHEMA wr_live;
IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (customers) FROM SERVER wr INTO wr_live;
ALTER SYSTEM SET cyberbiz.sync_interval = 1;
SELECT pg_reload_conf();
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        EXIT WHEN (SELECT fresh_as_of IS NOT NULL FROM cyberbiz_replica_state WHERE server = 'wr' AND table_name = 'customers');
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
ALTER SYSTEM RESET cyberbiz.sync_interval;
SELECT pg_reload_conf();
SELECT last_error, (SELECT count(*) FROM wr_replica.customers) = (SELECT count(*) FROM wr_live.customers) AS synced
FROM cyberbiz_replica_state WHERE server = 'wr' AND table_name = 'customers';
-- The receiver stores and applies a webhook, as the worker's role.
UPDATE wr_live.customers SET note = 'received by a worker that is not a superuser' WHERE id = (SELECT min(id) FROM wr_live.customers);
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM wr_replica.customers WHERE raw->>'note' = 'received by a worker that is not a superuser');
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT event FROM cyberbiz_webhook_events WHERE server = 'wr';
SELECT count(*) AS applied FROM wr_replica.customers WHERE raw->>'note' = 'received by a worker that is not a superuser';
SELECT pg_get_userbyid(c.relowner) AS replica_owner FROM pg_class c WHERE c.oid = 'wr_replica.customers'::regclass;
-- A replica table given to another role, which puts a trigger on it, and the worker granted the
-- rights to write it: the worker writes as the table's owner, so the trigger runs with the
-- owner's rights, never the worker's.
CREATE ROLE wr_owner;
GRANT USAGE ON SCHEMA wr_replica TO wr_owner;
ALTER TABLE wr_replica.customers OWNER TO wr_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON wr_replica.customers TO cyberbiz_worker;
CREATE TABLE wr_seen (who name);
GRANT INSERT ON wr_seen TO PUBLIC;
CREATE FUNCTION wr_trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.wr_seen VALUES (current_user); RETURN NEW; END $$;
CREATE TRIGGER t BEFORE UPDATE ON wr_replica.customers FOR EACH ROW EXECUTE FUNCTION wr_trg();
UPDATE wr_live.customers SET note = 'seen by the owner''s trigger' WHERE id = (SELECT max(id) FROM wr_live.customers);
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM wr_replica.customers WHERE raw->>'note' = 'seen by the owner''s trigger');
        PERFORM pg_sleep(0.25);
    END LOOP;
END $$;
SELECT DISTINCT who AS trigger_ran_as FROM wr_seen;
DROP TRIGGER t ON wr_replica.customers;
ALTER TABLE wr_replica.customers OWNER TO cyberbiz_worker;
DROP TABLE wr_seen;
DROP FUNCTION wr_trg();
REVOKE USAGE ON SCHEMA wr_replica FROM wr_owner;
DROP ROLE wr_owner;

ALTER SYSTEM RESET cyberbiz.webhook_role;
\! pg_ctlcluster 15 main restart >/dev/null 2>&1
\c cyberbiz_fdw_regress
SET client_min_messages = warning;
DELETE FROM cyberbiz_webhook_events WHERE server = 'wr';
DELETE FROM cyberbiz_replica_state WHERE server = 'wr';
DELETE FROM cyberbiz_replicas WHERE server = 'wr';
DROP SCHEMA wr_live CASCADE;
DROP OWNED BY cyberbiz_worker CASCADE;
DROP ROLE cyberbiz_worker;
DROP SERVER wr CASCADE;
