-- cyberbiz_fdw 0.3.0 -> 0.4.0. Keeps every row: no table changes here.
--
-- Nothing a non-superuser can shape runs as a superuser: every function of the extension runs
-- with search_path pg_catalog, the extension's schema, pg_temp (the block at the end, the same
-- as sql/search_path.sql); the two procedures, which cannot have a SET clause and still COMMIT,
-- name every object with its schema and keep their logic in functions that have one.
-- pg_dump keeps where the events' id sequence stands. The receiver's view says why it does not
-- listen and how many peers it refused for want of room. cyberbiz_grant_worker gives a role
-- what the workers need. Replicas record their schemas and tables by oid and write into
-- nothing else; a superuser's writes into another role's replica tables run as their owner.
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

-- Replicas record what cyberbiz_replicate created (schemas, tables, by oid) and write into
-- nothing else; a superuser's writes into another role's replica tables run as their owner.
-- The replicas 0.3.0 made are taken as they are now.
ALTER TABLE cyberbiz_replicas ADD COLUMN schema_oid oid, ADD COLUMN source_schema_oid oid;
ALTER TABLE cyberbiz_replica_state ADD COLUMN relid oid;
UPDATE cyberbiz_replicas r SET schema_oid = to_regnamespace(quote_ident(r.schema_name))::oid,
                               source_schema_oid = to_regnamespace(quote_ident(r.source_schema))::oid;
UPDATE cyberbiz_replica_state s SET relid = to_regclass(format('%I.%I', r.schema_name, s.table_name))
FROM cyberbiz_replicas r WHERE r.server = s.server;

-- A delete webhook's write, as pgrx declares it.
CREATE  FUNCTION "cyberbiz_fdw_replica_delete"(
	"resource" TEXT, /* & str */
	"schema" TEXT, /* & str */
	"id" bigint, /* i64 */
	"at" timestamp with time zone /* Option < TimestampWithTimeZone > */
) RETURNS void
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_replica_delete_wrapper';

-- The schema `schema_name` of a replica: created here if missing (it belongs to the caller);
-- else accepted only if it is the one recorded (`recorded`), or, for the replica's own schema
-- (not `private`), one the caller owns. Anything else (a schema another role owns, or put
-- there before the replica existed) is an error: the replica never writes where others can
-- shape what runs. Returns its oid.
CREATE FUNCTION cyberbiz_replica_schema(schema_name name, recorded oid, private boolean) RETURNS oid
LANGUAGE plpgsql AS $fn$
DECLARE
    found oid;
    owner name;
BEGIN
    SELECT n.oid, pg_get_userbyid(n.nspowner) INTO found, owner FROM pg_namespace n WHERE n.nspname = schema_name;
    IF found IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', schema_name);
        IF private THEN
            EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', schema_name);
        END IF;
        RETURN to_regnamespace(quote_ident(schema_name))::oid;
    END IF;
    IF found = recorded OR (NOT private AND owner = current_user) THEN
        RETURN found;
    END IF;
    RAISE EXCEPTION 'schema "%" already exists (owner "%"), and cyberbiz_replicate did not create it', schema_name, owner
        USING ERRCODE = '42P06',
              HINT = CASE WHEN private THEN 'It holds the replica''s foreign tables: drop it, or let cyberbiz_replicate create it.'
                          ELSE 'Replicate into a new schema, or into one you own.' END;
END
$fn$;

-- Creates (or completes) the replica of `server` in schema `into_schema`: one table per list
-- resource with the columns, types and comments IMPORT FOREIGN SCHEMA gives, a primary key,
-- indexes, and `_deleted_at` / `_synced_at`. Safe to run again, or for more tables. Returns
-- the tables. Fill them with CALL cyberbiz_sync(server). The schema is created (or must be the
-- caller's), the tables belong to the caller and are recorded by oid: a relation of the same
-- name that cyberbiz_replicate did not create is an error, never written into.
CREATE OR REPLACE FUNCTION cyberbiz_replicate(server name, into_schema name, tables text[] DEFAULT NULL) RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    rep cyberbiz_replicas;
    srv oid;
    t record;
    stmt text;
    known oid;
    rel oid;
BEGIN
    SELECT s.oid INTO srv FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
    WHERE s.srvname = cyberbiz_replicate.server AND w.fdwname = 'cyberbiz_fdw';
    IF srv IS NULL THEN
        RAISE EXCEPTION 'there is no CYBERBIZ server "%"', server USING ERRCODE = '42704';
    END IF;
    SELECT * INTO rep FROM cyberbiz_replicas r WHERE r.server = cyberbiz_replicate.server;
    IF rep.server IS NULL THEN
        SELECT * INTO rep FROM cyberbiz_replicas r WHERE r.schema_name = into_schema;
        IF rep.server IS NOT NULL THEN
            RAISE EXCEPTION 'schema "%" already holds the replica of server "%"', into_schema, rep.server
                USING ERRCODE = '42P06', HINT = 'One schema per server, so that two shops never share a row.';
        END IF;
        INSERT INTO cyberbiz_replicas (server, schema_name, source_schema)
        VALUES (server, into_schema, 'cyberbiz_source_' || srv) RETURNING * INTO rep;
    ELSIF rep.schema_name <> into_schema THEN
        RAISE EXCEPTION 'server "%" is replicated into schema "%", not "%"', server, rep.schema_name, into_schema USING ERRCODE = '42P06';
    END IF;
    -- Unknown table names fail here, before anything is created.
    PERFORM count(*) FROM cyberbiz_fdw_replica_tables(tables);
    UPDATE cyberbiz_replicas r SET schema_oid = cyberbiz_replica_schema(rep.schema_name, rep.schema_oid, false),
                                   source_schema_oid = cyberbiz_replica_schema(rep.source_schema, rep.source_schema_oid, true)
    WHERE r.server = rep.server;
    FOR t IN SELECT * FROM cyberbiz_fdw_replica_tables(tables) LOOP
        SELECT s.relid INTO known FROM cyberbiz_replica_state s WHERE s.server = rep.server AND s.table_name = t.table_name;
        rel := to_regclass(format('%I.%I', rep.schema_name, t.table_name));
        IF rel IS NOT NULL AND rel IS DISTINCT FROM known THEN
            RAISE EXCEPTION 'relation %.% already exists, and cyberbiz_replicate did not create it', quote_ident(rep.schema_name), quote_ident(t.table_name)
                USING ERRCODE = '42P07', HINT = 'Drop or rename it: the replica writes only into tables it created (recorded by oid).';
        END IF;
        FOR stmt IN SELECT cyberbiz_fdw_replica_ddl(t.table_name, rep.schema_name) LOOP
            EXECUTE stmt;
        END LOOP;
        IF t.parent IS NULL THEN
            EXECUTE cyberbiz_fdw_replica_source(t.table_name, rep.source_schema, server);
        END IF;
        INSERT INTO cyberbiz_replica_state AS s (server, table_name, parent, incremental, relid)
        VALUES (server, t.table_name, t.parent, t.incremental, to_regclass(format('%I.%I', rep.schema_name, t.table_name)))
        ON CONFLICT ON CONSTRAINT cyberbiz_replica_state_pkey DO UPDATE SET relid = excluded.relid;
        RETURN NEXT format('%I.%I', rep.schema_name, t.table_name);
    END LOOP;
END
$fn$;

-- Raises unless replica table `table_name` of `server`, its children, and the foreign table a
-- sync reads it through are the relations cyberbiz_replicate created (recorded by oid, in the
-- recorded schemas, a table and a foreign table): a relation put in the place of one (a view,
-- a schema dropped and made again) is never read or written.
CREATE FUNCTION cyberbiz_replica_check(server name, table_name text) RETURNS void
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    rep cyberbiz_replicas;
    st cyberbiz_replica_state;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas r WHERE r.server = cyberbiz_replica_check.server;
    FOR st IN SELECT * FROM cyberbiz_replica_state s
              WHERE s.server = rep.server AND (s.table_name = cyberbiz_replica_check.table_name OR s.parent = cyberbiz_replica_check.table_name) LOOP
        IF to_regnamespace(quote_ident(rep.schema_name)) IS DISTINCT FROM rep.schema_oid::regnamespace
           OR to_regclass(format('%I.%I', rep.schema_name, st.table_name)) IS DISTINCT FROM st.relid::regclass
           OR (st.parent IS NULL AND (to_regnamespace(quote_ident(rep.source_schema)) IS DISTINCT FROM rep.source_schema_oid::regnamespace
               OR (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(format('%I.%I', rep.source_schema, st.table_name))) IS DISTINCT FROM 'f')) THEN
            RAISE EXCEPTION 'the replica of server "%" no longer has the relations cyberbiz_replicate created for %', rep.server, st.table_name
                USING ERRCODE = '42809',
                      HINT = format('Drop what took their place, then run SELECT cyberbiz_replicate(%L, %L) again.', rep.server, rep.schema_name);
        END IF;
    END LOOP;
END
$fn$;

-- Applies one accepted webhook payload about `resource` (`deletes`: it says the object is gone;
-- cyberbiz_fdw_webhook_kind) to the replica of `server`, decoded as a sync decodes the same
-- object. Returns whether a replica table of that resource exists.
CREATE OR REPLACE FUNCTION cyberbiz_replica_apply_event(server name, resource text, deletes boolean, p jsonb) RETURNS boolean
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    st cyberbiz_replica_state;
BEGIN
    SELECT * INTO rep FROM cyberbiz_replicas r WHERE r.server = cyberbiz_replica_apply_event.server;
    SELECT * INTO st FROM cyberbiz_replica_state s WHERE s.server = cyberbiz_replica_apply_event.server AND s.table_name = resource;
    IF rep.server IS NULL OR st.table_name IS NULL THEN
        RETURN false;
    END IF;
    PERFORM cyberbiz_replica_check(server, resource);
    IF deletes THEN
        PERFORM cyberbiz_fdw_replica_delete(resource, rep.schema_name, (p->>'id')::bigint, cyberbiz_taipei(p->>'updated_at'));
    ELSE
        PERFORM cyberbiz_replica_apply(server, rep.schema_name, resource, false, ARRAY[p]);
    END IF;
    UPDATE cyberbiz_replica_state s SET last_webhook_at = now() WHERE s.server = st.server AND s.table_name = st.table_name;
    RETURN true;
END
$fn$;


-- One step of a table's sync (its caller commits it), recording where it got; returns whether
-- the table's sync is complete. Steps of one server run one at a time (a transaction-level
-- advisory lock: a cancel or an error ends it with its transaction). First syncs of
-- incremental tables go back in windows of updated_at from the time they started (one
-- transaction per window, so a cancelled or failed run resumes at the last window committed);
-- later syncs ask for updated_at >= watermark - 2 minutes.
CREATE OR REPLACE FUNCTION cyberbiz_replica_step(server name, table_name text) RETURNS boolean
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    st cyberbiz_replica_state;
    started timestamptz := clock_timestamp();
    f record;
    lower timestamptz;
BEGIN
    -- One step per server at a time, whoever runs it; the lock ends with the transaction.
    PERFORM pg_advisory_xact_lock(hashtext('cyberbiz_sync'), hashtext(server));
    PERFORM cyberbiz_replica_check(server, table_name);
    SELECT * INTO STRICT st FROM cyberbiz_replica_state s WHERE s.server = cyberbiz_replica_step.server AND s.table_name = cyberbiz_replica_step.table_name;
    IF NOT st.incremental THEN
        f := cyberbiz_replica_fetch(server, table_name, NULL, NULL, true);
        UPDATE cyberbiz_replica_state s SET last_full_sync = started, last_incremental_sync = started, fresh_as_of = started, last_error = NULL
        WHERE s.server = st.server AND s.table_name = st.table_name;
        RETURN true;
    END IF;
    IF st.last_full_sync IS NOT NULL THEN
        f := cyberbiz_replica_fetch(server, table_name, st.watermark - interval '2 minutes', NULL, false);
        UPDATE cyberbiz_replica_state s SET last_incremental_sync = started, fresh_as_of = started, watermark = greatest(s.watermark, f.newest), last_error = NULL
        WHERE s.server = st.server AND s.table_name = st.table_name;
        RETURN true;
    END IF;
    IF st.full_started_at IS NULL THEN
        -- The first window has no upper end: it takes every row updated since a day before now.
        st.full_started_at := started;
        st.full_window := interval '1 day';
        lower := started - st.full_window;
        f := cyberbiz_replica_fetch(server, table_name, lower, NULL, false);
    ELSE
        lower := st.full_done_from - st.full_window;
        f := cyberbiz_replica_fetch(server, table_name, lower, st.full_done_from, false);
    END IF;
    IF f.fetched = 0 AND NOT cyberbiz_replica_any_before(server, table_name, lower) THEN
        UPDATE cyberbiz_replica_state s SET last_full_sync = clock_timestamp(), fresh_as_of = st.full_started_at,
            -- Rows changed after a window was read carry a later updated_at than any it held.
            watermark = coalesce(greatest(s.watermark, f.newest), st.full_started_at), full_started_at = NULL, full_done_from = NULL, full_window = NULL,
            last_error = NULL
        WHERE s.server = st.server AND s.table_name = st.table_name;
        RETURN true;
    END IF;
    -- Windows widen while they come back small and narrow when large (about 2,500 to 10,000 rows).
    UPDATE cyberbiz_replica_state s SET full_started_at = st.full_started_at, full_done_from = lower,
        full_window = CASE WHEN f.fetched < 2500 THEN st.full_window * 2 WHEN f.fetched > 10000 THEN greatest(st.full_window / 2, interval '1 minute') ELSE st.full_window END,
        watermark = greatest(s.watermark, f.newest), last_error = NULL
    WHERE s.server = st.server AND s.table_name = st.table_name;
    RETURN false;
END
$fn$;

-- Rows of a replica table: live, and marked deleted.
CREATE OR REPLACE FUNCTION cyberbiz_replica_rows(schema_name name, table_name text, OUT live bigint, OUT deleted bigint)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    -- Only a table cyberbiz_replicate created (a view put in its place is not run).
    IF NOT EXISTS (SELECT 1 FROM cyberbiz_replica_state s JOIN pg_class c ON c.oid = s.relid
                   WHERE s.relid = to_regclass(format('%I.%I', cyberbiz_replica_rows.schema_name, cyberbiz_replica_rows.table_name))
                     AND c.relkind = 'r') THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT count(*) FILTER (WHERE _deleted_at IS NULL), count(*) FILTER (WHERE _deleted_at IS NOT NULL) FROM %I.%I', schema_name, table_name)
        INTO live, deleted;
END
$fn$;

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
