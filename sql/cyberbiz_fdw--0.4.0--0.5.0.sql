-- cyberbiz_fdw 0.4.0 -> 0.5.0. Keeps every row: no table changes here.
--
-- A sync step reads every page of its window before it writes, so the replica rows it changes
-- are locked only while they are applied, not for the seconds the scan waits on the API: a
-- webhook about one of them no longer waits for the sync (cyberbiz_replica_fetch). First-sync
-- windows aim at 1,000 to 4,000 rows (were 2,500 to 10,000), so that applying one holds its
-- rows about 2 s at most (cyberbiz_replica_step). Time bounds reach the FDW as parameters,
-- never as text the session's DateStyle and TimeZone could misread (cyberbiz_replica_fetch,
-- cyberbiz_replica_any_before).
-- The definitions below are copies of sql/replica.sql (an upgrade script must stand alone); the
-- `upgrade` regression test fails if they drift. The block at the end is sql/search_path.sql.

CREATE OR REPLACE FUNCTION cyberbiz_replica_fetch(server name, table_name text, since timestamptz, before timestamptz, whole boolean,
    OUT fetched bigint, OUT written bigint, OUT newest timestamptz)
-- JIT costs more than it saves on these statements (their estimates are guesses).
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    objects jsonb[];
    a record;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_fetch.server;
    EXECUTE format('SELECT coalesce(array_agg(f.raw), ''{}'') FROM %I.%I f', rep.source_schema, table_name)
            || CASE WHEN since IS NULL AND before IS NULL THEN ''
                    WHEN before IS NULL THEN ' WHERE f.updated_at >= $1'
                    WHEN since IS NULL THEN ' WHERE f.updated_at < $2'
                    ELSE ' WHERE f.updated_at >= $1 AND f.updated_at < $2' END
        INTO objects USING since, before;
    fetched := cardinality(objects);
    a := cyberbiz_replica_apply(server, rep.schema_name, table_name, whole, objects);
    written := a.written;
    newest := a.newest;
END
$fn$;

CREATE OR REPLACE FUNCTION cyberbiz_replica_any_before(server name, table_name text, before timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    rep cyberbiz_replicas;
    found boolean;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas r WHERE r.server = cyberbiz_replica_any_before.server;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I f WHERE f.updated_at < $1 LIMIT 1)', rep.source_schema, table_name) INTO found USING before;
    RETURN found;
END
$fn$;

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
    -- Windows widen while they come back small and narrow when large (about 1,000 to 4,000
    -- rows: a window's rows are written at its end, locked for about 2 s at most).
    UPDATE cyberbiz_replica_state s SET full_started_at = st.full_started_at, full_done_from = lower,
        full_window = CASE WHEN f.fetched < 1000 THEN st.full_window * 2 WHEN f.fetched > 4000 THEN greatest(st.full_window / 2, interval '1 minute') ELSE st.full_window END,
        watermark = greatest(s.watermark, f.newest), last_error = NULL
    WHERE s.server = st.server AND s.table_name = st.table_name;
    RETURN false;
END
$fn$;

-- Runs last in the extension's script (and, the same block, at the end of every upgrade
-- script): every function of the extension runs with search_path pg_catalog, the extension's
-- schema, pg_temp. Whoever calls it, with whatever search_path and whatever objects others have
-- created in the caller's schemas, an unqualified name inside resolves to a built-in or to this
-- extension's own object. The procedures (cyberbiz_sync, cyberbiz_sync_table) are the
-- exception: a procedure with a SET clause cannot COMMIT, so their bodies name every object
-- with its schema instead (sql/replica.sql).
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
