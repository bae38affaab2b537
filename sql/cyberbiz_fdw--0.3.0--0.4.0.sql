-- cyberbiz_fdw 0.3.0 -> 0.4.0. Keeps every row: no table changes here.
--
-- Nothing a non-superuser can shape runs as a superuser: every function of the extension runs
-- with search_path pg_catalog, the extension's schema, pg_temp (the block at the end, the same
-- as sql/search_path.sql); the two procedures, which cannot have a SET clause and still COMMIT,
-- name every object with its schema and keep their logic in functions that have one.
-- pg_dump keeps where the events' id sequence stands. The receiver's view says why it does not
-- listen and how many peers it refused for want of room.
-- The definitions below are copies of sql/replica.sql and sql/receiver.sql (an upgrade script
-- must stand alone); the `upgrade` regression test fails if they drift.

SELECT pg_catalog.pg_extension_config_dump('cyberbiz_webhook_events_id_seq', '');

DROP VIEW cyberbiz_stat_receiver;
DROP FUNCTION cyberbiz_fdw_receiver_stats();
CREATE  FUNCTION "cyberbiz_fdw_receiver_stats"() RETURNS TABLE (
	"pid" INT,  /* Option < i32 > */
	"port" INT,  /* Option < i32 > */
	"listening_since" bigint,  /* Option < i64 > */
	"accepted" bigint,  /* i64 */
	"duplicates" bigint,  /* i64 */
	"rejected_signature" bigint,  /* i64 */
	"rejected_too_large" bigint,  /* i64 */
	"rejected_malformed" bigint,  /* i64 */
	"unavailable" bigint,  /* i64 */
	"errors" bigint,  /* i64 */
	"mean_latency_ms" double precision,  /* Option < f64 > */
	"max_latency_ms" double precision,  /* f64 */
	"refused_busy" bigint,  /* i64 */
	"listen_error" TEXT  /* Option < String > */
)
STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_receiver_stats_wrapper';

CREATE VIEW cyberbiz_stat_receiver AS SELECT * FROM cyberbiz_fdw_receiver_stats();
COMMENT ON VIEW cyberbiz_stat_receiver IS 'CYBERBIZ webhook receiver (background worker): where it listens (or why not), deliveries accepted, duplicates, refusals by reason, errors, latency';

-- Syncs one table and its children, committing after every step; returns the error of a
-- failed step (recorded in cyberbiz_replica_state). A procedure cannot COMMIT under a SET
-- clause, so this one and cyberbiz_sync take no fixed search_path (sql/search_path.sql): every
-- name in their bodies carries its schema, and their logic is in functions that have one.
CREATE OR REPLACE PROCEDURE cyberbiz_sync_table(server name, table_name text, round_started timestamptz, INOUT error text DEFAULT NULL)
LANGUAGE plpgsql AS $fn$
DECLARE
    done boolean;
BEGIN
    LOOP
        SELECT s.done, s.error INTO done, error FROM @extschema@.cyberbiz_sync_step(server, table_name, round_started, true) s;
        COMMIT;
        EXIT WHEN done;
    END LOOP;
END
$fn$;

-- The parents of `tables` (NULL: every table) of the replica of `server`, in the order
-- cyberbiz_sync syncs them; an error if the server has no replica.
CREATE FUNCTION cyberbiz_sync_plan(server name, tables text[]) RETURNS text[]
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cyberbiz_replicas r WHERE r.server = cyberbiz_sync_plan.server) THEN
        RAISE EXCEPTION 'server "%" has no replica', server USING ERRCODE = '42704', HINT = 'Create it first: SELECT cyberbiz_replicate(''' || server || ''', ''<schema>'');';
    END IF;
    RETURN coalesce((SELECT array_agg(x.table_name) FROM cyberbiz_sync_tables(server, tables) x), '{}');
END
$fn$;

-- The end of a CALL cyberbiz_sync: an error naming every failed table, if any failed.
CREATE FUNCTION cyberbiz_sync_report(server name, todo text[], failed text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF cardinality(failed) > 0 THEN
        RAISE EXCEPTION 'cyberbiz_sync of server "%": % of % tables failed', server, cardinality(failed), cardinality(todo)
            USING DETAIL = array_to_string(failed, E'\n'), HINT = 'The other tables are synced; SELECT * FROM cyberbiz_replica_status shows each table''s last error.';
    END IF;
END
$fn$;

CREATE OR REPLACE PROCEDURE cyberbiz_sync(server name, tables text[] DEFAULT NULL)
LANGUAGE plpgsql AS $fn$
DECLARE
    round_started timestamptz := pg_catalog.clock_timestamp();
    todo text[] := @extschema@.cyberbiz_sync_plan(server, tables);
    t text;
    err text;
    failed text[] := '{}';
BEGIN
    FOREACH t IN ARRAY todo LOOP
        err := NULL;
        CALL @extschema@.cyberbiz_sync_table(server, t, round_started, err);
        IF err IS NOT NULL THEN
            failed := pg_catalog.array_append(failed, pg_catalog.format('%s: %s', t, err));
        END IF;
    END LOOP;
    PERFORM @extschema@.cyberbiz_sync_report(server, todo, failed);
END
$fn$;

DO $harden$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.deptype = 'e'
          AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
          AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'cyberbiz_fdw')
          AND p.prokind OPERATOR(pg_catalog.<>) 'p'
          -- (a test build's own functions live in schema tests, and keep the caller's path)
          AND p.pronamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, @extschema@, pg_temp', f);
    END LOOP;
END
$harden$;
