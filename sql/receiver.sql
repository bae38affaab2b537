-- The webhook receiver's counters (a background worker of a preloaded cluster with
-- cyberbiz.webhook_listen set): deliveries accepted, redeliveries, refusals by reason, errors,
-- latency, peers refused for want of room (tests: limits in src/receiver.rs), why it does not
-- listen (listen_error; a failed bind is tried again every 5 s). Empty when the library is not
-- preloaded; pid is NULL while the worker is down (the postmaster starts it again in 5 s).
CREATE VIEW cyberbiz_stat_receiver AS SELECT * FROM cyberbiz_fdw_receiver_stats();
COMMENT ON VIEW cyberbiz_stat_receiver IS 'CYBERBIZ webhook receiver (background worker): where it listens (or why not), deliveries accepted, duplicates, refusals by reason, errors, latency';

-- Grants role `role` what the background workers need to run as it (cyberbiz.webhook_role):
-- reading and writing the extension's tables (events, replica bookkeeping, 0.1.0 mirrors) and
-- using the events' id sequence; nothing else. Returns what it granted on. A superuser runs it
-- once per role (and again after an upgrade that adds a table). The role also needs LOGIN, a
-- user mapping with api_token and app_secret on each server, and to own the replicas it keeps
-- (README: the workers' role).
CREATE FUNCTION cyberbiz_grant_worker(role name) RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relkind
        FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
        WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind IN ('r', 'S')
          AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'cyberbiz_fdw')
        ORDER BY c.oid::regclass::text
    LOOP
        EXECUTE format(CASE r.relkind WHEN 'S' THEN 'GRANT USAGE, SELECT ON SEQUENCE %s TO %I' ELSE 'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %I' END,
                       r.rel, role);
        RETURN NEXT r.rel::text;
    END LOOP;
END
$fn$;
