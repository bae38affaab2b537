-- The local replica: typed tables, one schema per server, filled by CALL cyberbiz_sync through
-- the FDW and kept fresh by webhooks. The tables' DDL, the decoding of API objects into their
-- rows and the statements applying them come from Rust (cyberbiz_fdw_replica_*,
-- cyberbiz_fdw_decode), from the same catalog declarations as IMPORT FOREIGN SCHEMA.

-- One replica per server: the schema of its tables, and the (private) schema of the foreign
-- tables the sync reads through.
CREATE TABLE cyberbiz_replicas (
    server name PRIMARY KEY,
    schema_name name NOT NULL UNIQUE,
    source_schema name NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The schemas as cyberbiz_replicate created (or, for schema_name, accepted) them.
    schema_oid oid,
    source_schema_oid oid,
    -- The scheduler's rounds of this server (sql/schedule.sql): the sync worker running one
    -- now, when the last scheduled round began (the next is due from it) and how long it took,
    -- when a worker last claimed a round (of either kind).
    round_pid integer,
    round_started_at timestamptz,
    round_seconds double precision,
    round_claimed_at timestamptz
);
COMMENT ON TABLE cyberbiz_replicas IS 'CYBERBIZ servers replicated by cyberbiz_replicate, and the schema each is kept in';

-- Where each replica table's sync stands. A child table (order_line_items) is synced with its
-- parent; its row here records webhooks and errors only.
CREATE TABLE cyberbiz_replica_state (
    server name NOT NULL REFERENCES cyberbiz_replicas (server) ON UPDATE CASCADE ON DELETE CASCADE,
    table_name text NOT NULL,
    parent text,
    -- Synced by updated_at ranges (else refreshed whole).
    incremental boolean NOT NULL,
    -- A first sync in progress: started then, has filled every updated_at >= full_done_from,
    -- and asks for the next window of full_window below it.
    full_started_at timestamptz,
    full_done_from timestamptz,
    full_window interval,
    last_full_sync timestamptz,
    last_incremental_sync timestamptz,
    -- The replica holds every change the shop made before this (the start of the last sync
    -- that completed).
    fresh_as_of timestamptz,
    -- The newest updated_at a sync applied; the next incremental sync asks from here, less an
    -- overlap.
    watermark timestamptz,
    last_webhook_at timestamptz,
    last_error text,
    last_error_at timestamptz,
    -- The table cyberbiz_replicate created: the replica writes into no other relation.
    relid oid,
    -- The last cyberbiz_verify: when it ran; the updated_at it compared rows below (tables
    -- synced by updated_at); the rows it counted in the API and, after its repairs, in the
    -- replica; the rows it repaired; what it found.
    verified_at timestamptz,
    verified_through timestamptz,
    api_rows bigint,
    replica_rows bigint,
    repaired bigint,
    verify_result text,
    PRIMARY KEY (server, table_name)
);
COMMENT ON TABLE cyberbiz_replica_state IS 'Progress of cyberbiz_sync per replica table (resumable first syncs, incremental watermarks, errors)';

SELECT pg_catalog.pg_extension_config_dump('cyberbiz_replicas', '');
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_replica_state', '');

-- Honest estimates for the planner: an API object decodes into one row of its table, or into
-- its few child rows (an order's line items); the default of 1,000 rows per call made the
-- apply statements look a thousand times their size.
ALTER FUNCTION cyberbiz_fdw_decode(text, text, jsonb) ROWS 2;
ALTER FUNCTION cyberbiz_fdw_replica_tables(text[]) ROWS 25;
ALTER FUNCTION cyberbiz_fdw_replica_ddl(text, text) ROWS 20;
-- The apply statement is prepared once per session and its plan kept: planned without JIT,
-- and by its keys even while the replica is still small (a plan kept from an empty table
-- would scan the growing line items whole for every webhook: 496 deliveries/s into a new
-- replica instead of thousands). Every table access of a webhook's or an incremental batch's
-- statement has a key (a whole refresh's marking of missing rows reads its table whole, by
-- index). The settings are fixed here, whoever calls it (they hold for triggers a user puts on
-- replica tables too).
ALTER FUNCTION cyberbiz_fdw_replica_apply(text, text, text, boolean, jsonb[], boolean) ROWS 1 SET jit = off SET enable_seqscan = off;

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
CREATE FUNCTION cyberbiz_replicate(server name, into_schema name, tables text[] DEFAULT NULL) RETURNS SETOF text
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

-- The API's objects of `table_name` of `server` (those with updated_at in [since, before) when
-- a bound is given, else every one), read through the FDW. A read during which the shop's list
-- shrank (its X-Total fell: later pages moved up and a row may have been skipped), or that
-- found fewer rows than the list held from its first page to its last (a row left and another
-- came: the total stayed, a row was skipped), is done again. After 3 reads that each shrank it
-- fails (40001), so a skipped row is never taken for a complete read; 3 reads each short of the
-- total without a shrink are taken with a WARNING (a list whose X-Total always counts more than
-- it shows would otherwise never sync). The bounds reach the FDW as parameters, never as text
-- that the session's DateStyle and TimeZone could misread.
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

-- One step of a sync: reads `table_name` of `server` (cyberbiz_replica_read: rows with
-- updated_at in [since, before) when given, else every row), then applies them to the replica
-- and its child tables (newest updated_at wins; `whole`: rows not seen are marked deleted once
-- the API confirms them gone). Returns rows fetched, rows written and (unless `whole`) the
-- newest updated_at fetched. Atomic: an error applies nothing. Every request is made before
-- anything is written, so the rows a step changes are locked only while they are applied
-- (about 0.5 ms per order with its line items), never while it waits on the API.
CREATE FUNCTION cyberbiz_replica_fetch(server name, table_name text, since timestamptz, before timestamptz, whole boolean,
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

-- For a whole refresh of `table_name` that read `objects`: the live rows it did not see and
-- that were written before the step began (a row written during the scan is not a candidate)
-- which the API, asked for them by id, no longer has (cyberbiz_replica_confirm).
CREATE FUNCTION cyberbiz_replica_gone(server name, table_name text, objects jsonb[]) RETURNS bigint[]
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

-- Asks the API for rows `candidates` of `table_name` by id, in batches of 50 (orders: a GET
-- per id; customers: a list of ids, whose every absent id is then asked for alone): `gone`, the
-- ids it no longer has, and `alive`, the objects of those it still has (a row a list skipped, or
-- one that changed since). A batch during whose read the list shrank proves nothing: its
-- candidates are in neither. About one request per candidate, two per one found gone.
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

-- Whether the shop has rows of `table_name` updated before `before` (one request, LIMIT 1).
CREATE FUNCTION cyberbiz_replica_any_before(server name, table_name text, before timestamptz) RETURNS boolean
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

-- One step of a table's sync (its caller commits it), recording where it got; returns whether
-- the table's sync is complete. Steps of one server run one at a time (a transaction-level
-- advisory lock: a cancel or an error ends it with its transaction). First syncs of
-- incremental tables go back in windows of updated_at from the time they started (one
-- transaction per window, so a cancelled or failed run resumes at the last window committed);
-- later syncs ask for updated_at >= watermark - 2 minutes.
CREATE FUNCTION cyberbiz_replica_step(server name, table_name text) RETURNS boolean
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

-- The one sync step every driver runs (CALL cyberbiz_sync, a pg_cron job, the scheduler
-- worker), each in a transaction of its own that the driver commits: one cyberbiz_replica_step
-- of `table_name`, unless another driver has brought the table up to date since
-- `round_started` (the start of the caller's round), so that drivers running together never
-- ask for the same rows twice. `wait`: wait while another driver's step of this server runs
-- (else such a server is skipped: done). An error is recorded in cyberbiz_replica_state for the
-- table and its children and returned; nothing of the failed step is applied. A cancel is not
-- caught: it ends the transaction, and the lock with it.
CREATE FUNCTION cyberbiz_sync_step(server name, table_name text, round_started timestamptz, wait boolean,
    OUT done boolean, OUT error text)
LANGUAGE plpgsql SET jit = off AS $fn$
BEGIN
    done := true;
    IF NOT wait AND NOT pg_try_advisory_xact_lock(hashtext('cyberbiz_sync'), hashtext(server)) THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('cyberbiz_sync'), hashtext(server));
    IF EXISTS (SELECT 1 FROM cyberbiz_replica_state s
               WHERE s.server = cyberbiz_sync_step.server AND s.table_name = cyberbiz_sync_step.table_name
                 AND s.full_started_at IS NULL AND s.fresh_as_of >= round_started) THEN
        RETURN;
    END IF;
    BEGIN
        done := cyberbiz_replica_step(server, table_name);
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS error = MESSAGE_TEXT;
        PERFORM cyberbiz_sync_failed(server, table_name, error);
        done := true;
    END;
END
$fn$;

-- Records a failed sync step of `table_name` (and its children) in cyberbiz_replica_state: the
-- step does for the errors it catches, the scheduler for those it cannot (a timeout, a cancel).
CREATE FUNCTION cyberbiz_sync_failed(server name, table_name text, error text) RETURNS void
LANGUAGE sql AS $fn$
    UPDATE cyberbiz_replica_state s SET last_error = cyberbiz_sync_failed.error, last_error_at = clock_timestamp()
    WHERE s.server = cyberbiz_sync_failed.server
      AND (s.table_name = cyberbiz_sync_failed.table_name OR s.parent = cyberbiz_sync_failed.table_name)
$fn$;

-- The tables a sync of `server` (NULL: every server, as the scheduler syncs) runs steps for:
-- the parents of `tables` (NULL: every table), by server and name.
CREATE FUNCTION cyberbiz_sync_tables(server name DEFAULT NULL, tables text[] DEFAULT NULL) RETURNS TABLE (server_name name, table_name text)
LANGUAGE sql STABLE ROWS 25 AS $fn$
    SELECT s.server, s.table_name FROM cyberbiz_replica_state s
    WHERE (cyberbiz_sync_tables.server IS NULL OR s.server = cyberbiz_sync_tables.server) AND s.parent IS NULL
      AND (tables IS NULL OR s.table_name IN (SELECT coalesce(x.parent, x.table_name) FROM cyberbiz_fdw_replica_tables(tables) x))
    ORDER BY 1, 2
$fn$;

-- Syncs one table and its children, committing after every step; returns the error of a
-- failed step (recorded in cyberbiz_replica_state). A procedure cannot COMMIT under a SET
-- clause, so this one and cyberbiz_sync take no fixed search_path (sql/search_path.sql): every
-- name in their bodies carries its schema, and their logic is in functions that have one.
CREATE PROCEDURE cyberbiz_sync_table(server name, table_name text, round_started timestamptz, INOUT error text DEFAULT NULL)
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

-- Fills and refreshes the replica of `server` (every table, or `tables` and their parents and
-- children): a first sync at full pace, resumable; later ones incremental where the API filters
-- by updated_at, whole refreshes elsewhere. Commits as it goes, so CALL it outside a
-- transaction block. Requests come from the token's budget, capped at the server option
-- sync_requests_per_second when set. Raises at the end if any table failed (the others are
-- synced; see cyberbiz_replica_status). Another driver's sync of the same server (a pg_cron
-- job, the scheduler) runs its steps between this one's; a table it brought up to date after
-- this CALL began is not asked for again.
CREATE PROCEDURE cyberbiz_sync(server name, tables text[] DEFAULT NULL)
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

-- Applies one accepted webhook payload about `resource` (`deletes`: it says the object is gone;
-- `creates`: it is a creation, which never replaces a row of the same updated_at;
-- cyberbiz_fdw_webhook_kind) to the replica of `server`, decoded as a sync decodes the same
-- object. Returns whether a replica table of that resource exists.
CREATE FUNCTION cyberbiz_replica_apply_event(server name, resource text, deletes boolean, p jsonb, creates boolean DEFAULT false) RETURNS boolean
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
        PERFORM cyberbiz_fdw_replica_apply(server, resource, rep.schema_name, false, ARRAY[p], creates);
    END IF;
    UPDATE cyberbiz_replica_state s SET last_webhook_at = now() WHERE s.server = st.server AND s.table_name = st.table_name;
    RETURN true;
END
$fn$;

-- Rows of a replica table: live, and marked deleted.
CREATE FUNCTION cyberbiz_replica_rows(schema_name name, table_name text, OUT live bigint, OUT deleted bigint)
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

-- The view cyberbiz_replica_status is in sql/schedule.sql (it shows the scheduler's rounds too).
