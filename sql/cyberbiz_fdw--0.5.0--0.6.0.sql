-- cyberbiz_fdw 0.5.0 -> 0.6.0. Keeps every row: cyberbiz_replica_state gains the columns of the
-- last verification (verified_at, verified_through, api_rows, replica_rows, repaired,
-- verify_result), shown by cyberbiz_replica_status.
--
-- cyberbiz_verify(server [, tables]) compares each replica table with the shop by the API's
-- X-Total per updated_at range, bisects ranges whose counts differ, and repairs what differs
-- (sql/verify.sql; the counting and comparing in Rust: cyberbiz_fdw_api_count,
-- cyberbiz_fdw_replica_span, cyberbiz_fdw_replica_compare). The scheduler runs it every
-- cyberbiz.verify_interval. A sync step's read-again loop is now its own function
-- (cyberbiz_replica_read), and reads again a whole list that held fewer rows than its X-Total
-- (cyberbiz_fdw_short_scans); the GET-by-id confirmation of a whole refresh
-- (cyberbiz_replica_confirm) asks each id a list of ids left out alone, and also returns the
-- objects the shop still has; cyberbiz_replica_fetch and cyberbiz_replica_gone call them.
-- cyberbiz_replica_check refuses a source foreign table whose columns were given types that
-- are not built in.
-- The definitions below are copies of sql/replica.sql and sql/verify.sql (an upgrade script must
-- stand alone); the `upgrade` regression test fails if they drift. The block at the end is
-- sql/search_path.sql.

ALTER TABLE cyberbiz_replica_state
    ADD COLUMN verified_at timestamptz,
    ADD COLUMN verified_through timestamptz,
    ADD COLUMN api_rows bigint,
    ADD COLUMN replica_rows bigint,
    ADD COLUMN repaired bigint,
    ADD COLUMN verify_result text;

CREATE  FUNCTION "cyberbiz_fdw_api_count"(
	"source" oid, /* pg_sys :: Oid */
	"since" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"before" timestamp with time zone /* Option < TimestampWithTimeZone > */
) RETURNS bigint /* Option < i64 > */
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_api_count_wrapper';

CREATE  FUNCTION "cyberbiz_fdw_replica_span"(
	"resource" TEXT, /* & str */
	"schema" TEXT, /* & str */
	"since" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"before" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"parts" INT /* i32 */
) RETURNS TABLE (
	"rows" bigint,  /* i64 */
	"cuts" timestamp with time zone[],  /* Vec < TimestampWithTimeZone > */
	"undated" bigint  /* i64 */
)
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_replica_span_wrapper';

CREATE  FUNCTION "cyberbiz_fdw_replica_compare"(
	"server" TEXT, /* & str */
	"resource" TEXT, /* & str */
	"schema" TEXT, /* & str */
	"since" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"before" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"objects" jsonb[], /* Array < '_, JsonB > */
	"written_before" timestamp with time zone /* TimestampWithTimeZone */
) RETURNS TABLE (
	"stale" INT[],  /* Vec < i32 > */
	"unseen" bigint[]  /* Vec < i64 > */
)
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_replica_compare_wrapper';

CREATE  FUNCTION "cyberbiz_fdw_short_scans"() RETURNS bigint /* i64 */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_short_scans_wrapper';

CREATE OR REPLACE FUNCTION cyberbiz_replica_check(server name, table_name text) RETURNS void
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
        -- A column of the source foreign table altered to a type of its owner's (a domain whose
        -- CHECK runs a function) would run that code in whoever syncs: only built-in types.
        IF st.parent IS NULL AND EXISTS (SELECT 1 FROM pg_attribute a
                                         WHERE a.attrelid = to_regclass(format('%I.%I', rep.source_schema, st.table_name))
                                           AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid >= 16384) THEN
            RAISE EXCEPTION 'the foreign table the replica of server "%" reads % through has a column of a type that is not built in', rep.server, st.table_name
                USING ERRCODE = '42809',
                      HINT = format('Drop schema %I (CASCADE), then run SELECT cyberbiz_replicate(%L, %L) again.', rep.source_schema, rep.server, rep.schema_name);
        END IF;
    END LOOP;
END
$fn$;

CREATE FUNCTION cyberbiz_replica_read(server name, table_name text, since timestamptz, before timestamptz) RETURNS jsonb[]
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    objects jsonb[];
    shifts bigint;
    shorts bigint;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_read.server;
    FOR attempt IN 1..3 LOOP
        shifts := cyberbiz_fdw_shifted_scans();
        shorts := cyberbiz_fdw_short_scans();
        EXECUTE format('SELECT coalesce(array_agg(f.raw), ''{}'') FROM %I.%I f', rep.source_schema, table_name)
                || CASE WHEN since IS NULL AND before IS NULL THEN ''
                        WHEN before IS NULL THEN ' WHERE f.updated_at >= $1'
                        WHEN since IS NULL THEN ' WHERE f.updated_at < $2'
                        ELSE ' WHERE f.updated_at >= $1 AND f.updated_at < $2' END
            INTO objects USING since, before;
        IF cyberbiz_fdw_shifted_scans() = shifts AND cyberbiz_fdw_short_scans() = shorts THEN
            RETURN objects;
        END IF;
    END LOOP;
    IF cyberbiz_fdw_shifted_scans() = shifts THEN
        RAISE WARNING 'the shop''s list of % held fewer rows than its X-Total in 3 reads; its % rows are taken as they are', table_name, cardinality(objects);
        RETURN objects;
    END IF;
    RAISE EXCEPTION 'the shop''s list of % shrank during each of 3 reads of %: rows may have been skipped, so nothing was applied; the next run reads it again',
        table_name, CASE WHEN since IS NULL AND before IS NULL THEN 'the table' ELSE 'an updated_at window' END
        USING ERRCODE = '40001';
END
$fn$;

CREATE OR REPLACE FUNCTION cyberbiz_replica_fetch(server name, table_name text, since timestamptz, before timestamptz, whole boolean,
    OUT fetched bigint, OUT written bigint, OUT newest timestamptz)
-- JIT costs more than it saves on these statements (their estimates are guesses).
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    objects jsonb[];
    gone bigint[] := '{}';
    id bigint;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_fetch.server;
    objects := cyberbiz_replica_read(server, table_name, since, before);
    fetched := cardinality(objects);
    IF whole THEN
        gone := cyberbiz_replica_gone(server, table_name, objects);
    END IF;
    SELECT x.written, x.newest INTO written, newest FROM cyberbiz_fdw_replica_apply(server, table_name, rep.schema_name, whole, objects) x;
    FOREACH id IN ARRAY gone LOOP
        PERFORM cyberbiz_fdw_replica_delete(table_name, rep.schema_name, id, NULL);
    END LOOP;
END
$fn$;

CREATE FUNCTION cyberbiz_replica_confirm(server name, table_name text, candidates bigint[], OUT gone bigint[], OUT alive jsonb[])
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    batch bigint[];
    present bigint[];
    objects jsonb[];
    one jsonb;
    shifts bigint;
    id bigint;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_confirm.server;
    gone := '{}';
    alive := '{}';
    FOR pos IN 1 .. cardinality(candidates) BY 50 LOOP
        batch := candidates[pos : pos + 49];
        shifts := cyberbiz_fdw_shifted_scans();
        EXECUTE format('SELECT coalesce(array_agg(f.id), ''{}''), coalesce(array_agg(f.raw), ''{}'') FROM %I.%I f WHERE f.id = ANY ($1)', rep.source_schema, table_name)
            INTO present, objects USING batch;
        CONTINUE WHEN cyberbiz_fdw_shifted_scans() <> shifts;
        alive := alive || objects;
        FOREACH id IN ARRAY ARRAY(SELECT b FROM unnest(batch) b WHERE b <> ALL (present)) LOOP
            one := NULL;
            IF cardinality(batch) > 1 THEN
                EXECUTE format('SELECT f.raw FROM %I.%I f WHERE f.id = $1', rep.source_schema, table_name) INTO one USING id;
            END IF;
            IF one IS NULL THEN
                gone := gone || id;
            ELSE
                alive := alive || one;
            END IF;
        END LOOP;
    END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION cyberbiz_replica_gone(server name, table_name text, objects jsonb[]) RETURNS bigint[]
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    seen bigint[];
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_gone.server;
    -- (An id may come as a number or as a string of digits.)
    SELECT coalesce(array_agg((o->>'id')::bigint), '{}') INTO seen FROM unnest(objects) o WHERE (o->>'id') ~ '^[0-9]{1,18}$';
    RETURN (cyberbiz_replica_confirm(server, table_name, cyberbiz_fdw_replica_missing(table_name, rep.schema_name, seen, now()))).gone;
END
$fn$;

CREATE OR REPLACE VIEW cyberbiz_replica_status AS
SELECT s.server, r.schema_name, s.table_name, n.live AS rows, n.deleted AS deleted_rows,
       coalesce(p.last_full_sync, s.last_full_sync) AS last_full_sync,
       coalesce(p.last_incremental_sync, s.last_incremental_sync) AS last_incremental_sync,
       s.last_webhook_at,
       CASE WHEN coalesce(p.full_started_at, s.full_started_at) IS NOT NULL THEN 'first sync in progress'
            WHEN coalesce(p.last_full_sync, s.last_full_sync) IS NULL THEN 'never synced'
            ELSE 'synced' END AS state,
       now() - coalesce(p.fresh_as_of, s.fresh_as_of) AS lag,
       coalesce(s.last_error, p.last_error) AS last_error,
       greatest(s.last_error_at, p.last_error_at) AS last_error_at,
       s.verified_at, s.verified_through, s.api_rows, s.replica_rows, s.repaired, s.verify_result
FROM cyberbiz_replica_state s
JOIN cyberbiz_replicas r ON r.server = s.server
LEFT JOIN cyberbiz_replica_state p ON p.server = s.server AND p.table_name = s.parent
LEFT JOIN LATERAL cyberbiz_replica_rows(r.schema_name, s.table_name) n ON true;
COMMENT ON VIEW cyberbiz_replica_status IS 'Per replica table: rows, syncs, webhooks, lag behind the shop, last error, last verification';

CREATE FUNCTION cyberbiz_verify_find(server name, table_name text,
    OUT api_rows bigint, OUT through timestamptz, OUT stale jsonb[], OUT gone bigint[], OUT replace jsonb[], OUT result text)
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    st cyberbiz_replica_state;
    src oid;
    objects jsonb[];
    c record;
    unseen bigint[] := '{}';
    read_at timestamptz;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_verify_find.server;
    SELECT * INTO STRICT st FROM cyberbiz_replica_state s WHERE s.server = rep.server AND s.table_name = cyberbiz_verify_find.table_name;
    stale := '{}';
    gone := '{}';
    IF st.last_full_sync IS NULL OR st.full_started_at IS NOT NULL THEN
        result := 'not verified: its first sync is not complete';
        RETURN;
    END IF;
    src := to_regclass(format('%I.%I', rep.source_schema, table_name));
    IF st.incremental THEN
        through := date_trunc('second', st.fresh_as_of - interval '2 minutes');
        SELECT r.api_rows, r.stale, r.unseen, r.result INTO api_rows, stale, unseen, result FROM cyberbiz_verify_ranges(server, table_name, through) r;
    ELSE
        api_rows := cyberbiz_fdw_api_count(src, NULL, NULL);
        IF api_rows = (SELECT s.rows FROM cyberbiz_fdw_replica_span(table_name, rep.schema_name, NULL, NULL, 1) s) THEN
            RETURN;
        END IF;
        read_at := clock_timestamp();
        objects := cyberbiz_replica_read(server, table_name, NULL, NULL);
        api_rows := cardinality(objects);
        SELECT * INTO STRICT c FROM cyberbiz_fdw_replica_compare(server, table_name, rep.schema_name, NULL, NULL, objects, read_at);
        IF NOT EXISTS (SELECT 1 FROM cyberbiz_fdw_replica_tables(ARRAY[table_name]) t WHERE t.key = ARRAY['id']) THEN
            -- (An empty list replaces whatever the replica holds.)
            IF cardinality(c.stale) > 0 OR (cardinality(objects) = 0 AND (SELECT s.rows FROM cyberbiz_fdw_replica_span(table_name, rep.schema_name, NULL, NULL, 1) s) > 0) THEN
                replace := objects;
            END IF;
            RETURN;
        END IF;
        stale := ARRAY(SELECT objects[i] FROM unnest(c.stale) i);
        unseen := c.unseen;
    END IF;
    IF cardinality(unseen) > 0 THEN
        SELECT * INTO STRICT c FROM cyberbiz_replica_confirm(server, table_name, unseen);
        gone := c.gone;
        stale := stale || c.alive;
    END IF;
END
$fn$;

CREATE FUNCTION cyberbiz_verify_count(src oid, since timestamptz, before timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint := cyberbiz_fdw_api_count(src, since, before);
BEGIN
    IF n IS NULL THEN
        RAISE EXCEPTION 'the API sent no X-Total for %: its rows cannot be counted', src::regclass USING ERRCODE = '22000';
    END IF;
    RETURN n;
END
$fn$;

CREATE FUNCTION cyberbiz_verify_ranges(server name, table_name text, through timestamptz,
    OUT api_rows bigint, OUT stale jsonb[], OUT unseen bigint[], OUT result text)
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    src oid;
    sp record;
    d record;
    bounds timestamptz[];
    lo timestamptz[] := '{}';
    hi timestamptz[] := '{}';
    api bigint[] := '{}';
    n bigint;
    k int;
    outer_counts bigint[];
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_verify_ranges.server;
    src := to_regclass(format('%I.%I', rep.source_schema, table_name));
    stale := '{}';
    unseen := '{}';
    SELECT * INTO STRICT sp FROM cyberbiz_fdw_replica_span(table_name, rep.schema_name, NULL, through, 16);
    bounds := array_append(array_prepend(NULL::timestamptz, sp.cuts), through);
    outer_counts := ARRAY[cyberbiz_verify_count(src, NULL, NULL), cyberbiz_verify_count(src, through, NULL)];
    api_rows := 0;
    FOR i IN 1 .. cardinality(bounds) - 1 LOOP
        n := cyberbiz_verify_count(src, bounds[i], bounds[i + 1]);
        api_rows := api_rows + n;
        lo := array_append(lo, bounds[i]);
        hi := array_append(hi, bounds[i + 1]);
        api := array_append(api, n);
    END LOOP;
    -- Rows without updated_at: the total less the ranges and the newer rows, if the shop did
    -- not change while they were counted.
    IF outer_counts = ARRAY[cyberbiz_verify_count(src, NULL, NULL), cyberbiz_verify_count(src, through, NULL)] THEN
        n := outer_counts[1] - outer_counts[2] - api_rows;
        IF n <> sp.undated THEN
            result := format('differs: %s rows without updated_at in the shop, %s in the replica (the API cannot list them apart: a first sync again would read them)', n, sp.undated);
        END IF;
        api_rows := api_rows + n;
    ELSE
        api_rows := api_rows + sp.undated;
    END IF;
    WHILE cardinality(hi) > 0 LOOP
        k := cardinality(hi);
        SELECT * INTO STRICT d FROM cyberbiz_verify_range(server, table_name, lo[k], hi[k], api[k]) x;
        stale := stale || d.stale;
        unseen := unseen || d.unseen;
        lo := lo[1 : k - 1] || d.lo;
        hi := hi[1 : k - 1] || d.hi;
        api := api[1 : k - 1] || d.api;
    END LOOP;
END
$fn$;

CREATE FUNCTION cyberbiz_verify_range(server name, table_name text, since timestamptz, before timestamptz, api_rows bigint,
    OUT stale jsonb[], OUT unseen bigint[], OUT lo timestamptz[], OUT hi timestamptz[], OUT api bigint[])
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    sp record;
    cut timestamptz;
    start timestamptz := coalesce(since, '1970-01-01 00:00:00+00');
    objects jsonb[];
    c record;
    left_rows bigint;
    read_at timestamptz;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_verify_range.server;
    stale := '{}';
    unseen := '{}';
    lo := '{}';
    hi := '{}';
    api := '{}';
    SELECT * INTO STRICT sp FROM cyberbiz_fdw_replica_span(table_name, rep.schema_name, since, before, 2);
    IF sp.rows = api_rows THEN
        RETURN;
    END IF;
    cut := sp.cuts[1];
    IF cut IS NULL AND start < before THEN
        cut := date_trunc('second', start + (before - start) / 2);
    END IF;
    IF cut IS NULL OR cut <= start OR cut >= before OR api_rows <= 50 THEN
        read_at := clock_timestamp();
        objects := cyberbiz_replica_read(server, table_name, since, before);
        SELECT * INTO STRICT c FROM cyberbiz_fdw_replica_compare(server, table_name, rep.schema_name, since, before, objects, read_at);
        stale := ARRAY(SELECT objects[i] FROM unnest(c.stale) i);
        unseen := c.unseen;
        RETURN;
    END IF;
    left_rows := cyberbiz_verify_count(to_regclass(format('%I.%I', rep.source_schema, table_name)), since, cut);
    lo := ARRAY[since, cut];
    hi := ARRAY[cut, before];
    api := ARRAY[left_rows, api_rows - left_rows];
END
$fn$;

CREATE FUNCTION cyberbiz_verify_repair(server name, table_name text, stale jsonb[], gone bigint[], replace jsonb[]) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    changed bigint := cardinality(gone);
    w bigint;
    id bigint;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_verify_repair.server;
    IF replace IS NOT NULL THEN
        -- Every row it held is deleted, every object inserted.
        changed := changed + (SELECT s.rows FROM cyberbiz_fdw_replica_span(table_name, rep.schema_name, NULL, NULL, 1) s);
        SELECT x.written INTO w FROM cyberbiz_fdw_replica_apply(server, table_name, rep.schema_name, true, replace) x;
        changed := changed + w;
    END IF;
    IF cardinality(stale) > 0 THEN
        SELECT x.written INTO w FROM cyberbiz_fdw_replica_apply(server, table_name, rep.schema_name, false, stale) x;
        changed := changed + w;
    END IF;
    FOREACH id IN ARRAY gone LOOP
        PERFORM cyberbiz_fdw_replica_delete(table_name, rep.schema_name, id, NULL);
    END LOOP;
    RETURN changed;
END
$fn$;

CREATE FUNCTION cyberbiz_verify_table(server name, table_name text, wait boolean, repaired_before bigint DEFAULT 0,
    OUT api_rows bigint, OUT replica_rows bigint, OUT repaired bigint, OUT changed bigint, OUT result text)
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    f record;
    through timestamptz;
BEGIN
    changed := 0;
    repaired := repaired_before;
    IF NOT wait AND NOT pg_try_advisory_xact_lock(hashtext('cyberbiz_sync'), hashtext(server)) THEN
        result := 'not verified: a sync step of the server was running';
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('cyberbiz_sync'), hashtext(server));
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_verify_table.server;
    BEGIN
        PERFORM cyberbiz_replica_check(server, table_name);
        f := cyberbiz_verify_find(server, table_name);
        through := f.through;
        api_rows := f.api_rows;
        changed := cyberbiz_verify_repair(server, table_name, f.stale, f.gone, f.replace);
        repaired := repaired_before + changed;
        SELECT s.rows + CASE WHEN through IS NULL THEN 0 ELSE s.undated END INTO replica_rows
        FROM cyberbiz_fdw_replica_span(table_name, rep.schema_name, NULL, through, 1) s;
        result := coalesce(f.result,
            CASE WHEN api_rows IS DISTINCT FROM replica_rows THEN format('differs: %s rows in the shop, %s in the replica after %s repaired; the next pass looks again', api_rows, replica_rows, repaired)
                 WHEN repaired > 0 THEN 'repaired'
                 ELSE 'equal' END);
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS result = MESSAGE_TEXT;
        result := 'failed: ' || result;
        changed := 0;
        repaired := repaired_before;
    END;
    IF result LIKE 'not verified%' THEN
        RETURN;
    END IF;
    UPDATE cyberbiz_replica_state s
    SET verified_at = clock_timestamp(), verified_through = through, api_rows = cyberbiz_verify_table.api_rows,
        replica_rows = cyberbiz_verify_table.replica_rows, repaired = cyberbiz_verify_table.repaired, verify_result = cyberbiz_verify_table.result
    WHERE s.server = rep.server AND s.table_name = cyberbiz_verify_table.table_name;
END
$fn$;

CREATE FUNCTION cyberbiz_verify_due(server name, table_name text, every interval) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM cyberbiz_replica_state s
                   WHERE s.server = cyberbiz_verify_due.server AND s.table_name = cyberbiz_verify_due.table_name
                     AND s.full_started_at IS NULL AND s.last_full_sync IS NOT NULL
                     AND coalesce(s.verified_at, s.last_full_sync) <= clock_timestamp() - every)
$fn$;

CREATE FUNCTION cyberbiz_verify_syncs_first(server name, table_name text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM cyberbiz_replica_state s
                   WHERE s.server = cyberbiz_verify_syncs_first.server AND s.table_name = cyberbiz_verify_syncs_first.table_name
                     AND s.incremental AND s.full_started_at IS NULL AND s.last_full_sync IS NOT NULL)
$fn$;

CREATE PROCEDURE cyberbiz_verify(server name, tables text[] DEFAULT NULL)
LANGUAGE plpgsql AS $fn$
DECLARE
    round_started timestamptz := pg_catalog.clock_timestamp();
    t text;
    err text;
    v record;
    repaired bigint;
    failed text[] := '{}';
BEGIN
    FOREACH t IN ARRAY @extschema@.cyberbiz_sync_plan(server, tables) LOOP
        IF @extschema@.cyberbiz_verify_syncs_first(server, t) THEN
            CALL @extschema@.cyberbiz_sync_table(server, t, round_started, err);
        END IF;
        repaired := 0;
        FOR pass IN 1..3 LOOP
            SELECT x.repaired, x.changed, x.result INTO v FROM @extschema@.cyberbiz_verify_table(server, t, true, repaired) x;
            COMMIT;
            repaired := v.repaired;
            EXIT WHEN v.changed OPERATOR(pg_catalog.=) 0;
        END LOOP;
        RAISE NOTICE '%: %', t, v.result;
        IF pg_catalog.starts_with(v.result, 'failed') THEN
            failed := pg_catalog.array_append(failed, pg_catalog.format('%s: %s', t, v.result));
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'cyberbiz_verify of server "%": % tables failed', server, pg_catalog.cardinality(failed)
            USING DETAIL = pg_catalog.array_to_string(failed, E'\n'), HINT = 'The other tables are verified; SELECT * FROM cyberbiz_replica_status shows each table''s result.';
    END IF;
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
