-- cyberbiz_fdw 0.2.0 -> 0.3.0. Keeps every row: no table changes here.
--
-- Webhooks into the replica at the receiver's speed: the apply statements take their API
-- objects as a parameter (the session's temporary stage table, whose size the planner guessed
-- at over a thousand rows, is gone), the decoder declares the rows it returns, and JIT is off
-- in every function that runs per delivery, per batch of pages or per sync step.
-- One sync driver: CALL cyberbiz_sync and the scheduler worker run the same step
-- (cyberbiz_sync_step), one per server at a time under a transaction-level lock (0.2.0's
-- session-level lock outlived a cancelled CALL; its scheduler took none).
-- One webhook route: what an event is about reaches SQL as data (cyberbiz_fdw_webhook_kind:
-- resource, verb, deletes), and the server a delivery belongs to is picked by the receiver's
-- own rule (cyberbiz_fdw_webhook_server); options are read by the extension's option parser.
-- The function definitions below are copies of sql/replica.sql and sql/webhooks.sql (an
-- upgrade script must stand alone); the `upgrade` regression test fails if they drift.

-- The apply statement prepared once per session (src/fdw/replica.rs), as pgrx declares it.
CREATE FUNCTION "cyberbiz_fdw_replica_apply"(
	"server" TEXT, /* & str */
	"resource" TEXT, /* & str */
	"schema" TEXT, /* & str */
	"whole" bool, /* bool */
	"objects" jsonb[] /* Array < '_, JsonB > */
) RETURNS TABLE (
	"written" bigint,  /* i64 */
	"newest" timestamp with time zone  /* Option < TimestampWithTimeZone > */
)
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_replica_apply_wrapper';

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
ALTER FUNCTION cyberbiz_fdw_replica_apply(text, text, text, boolean, jsonb[]) ROWS 1 SET jit = off SET enable_seqscan = off;


-- Applies API objects of `table_name` to `server`'s replica (schema `schema_name`) and its
-- child tables. Returns rows written and the newest updated_at applied (NULL for tables
-- without one). The objects reach the statement as a parameter (no temporary table whose size
-- the planner must guess); the statement is prepared once per session; JIT is off: these
-- statements run per webhook and per batch of pages, where compiling costs more than it saves.
CREATE FUNCTION cyberbiz_replica_apply(server name, schema_name name, table_name text, whole boolean, objects jsonb[],
    OUT written bigint, OUT newest timestamptz)
LANGUAGE plpgsql SET jit = off AS $fn$
BEGIN
    SELECT a.written, a.newest INTO written, newest FROM cyberbiz_fdw_replica_apply(server, table_name, schema_name, whole, objects) a;
END
$fn$;

-- One step of a sync: reads `table_name` of `server` through the FDW (rows with updated_at in
-- [since, before) when given, else every row), applies them to the replica and its child
-- tables (newest updated_at wins; `whole`: rows not seen are marked deleted). Returns rows
-- fetched, rows written and (unless `whole`) the newest updated_at fetched. Atomic: an error
-- applies nothing. Unless `whole`, rows are applied in batches of 500 while the scan goes on,
-- so the FDW keeps fetching the next pages (at the budget's pace) while a batch is written.
CREATE OR REPLACE FUNCTION cyberbiz_replica_fetch(server name, table_name text, since timestamptz, before timestamptz, whole boolean,
    OUT fetched bigint, OUT written bigint, OUT newest timestamptz)
-- JIT costs more than it saves on these statements (their estimates are guesses).
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    cond text[] := '{}';
    batch jsonb[] := '{}';
    r record;
    a record;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_fetch.server;
    fetched := 0;
    written := 0;
    IF since IS NOT NULL THEN
        cond := cond || format('updated_at >= %L::timestamptz', since);
    END IF;
    IF before IS NOT NULL THEN
        cond := cond || format('updated_at < %L::timestamptz', before);
    END IF;
    FOR r IN EXECUTE format('SELECT raw FROM %I.%I', rep.source_schema, table_name)
                     || CASE WHEN cond = '{}' THEN '' ELSE ' WHERE ' || array_to_string(cond, ' AND ') END LOOP
        batch := array_append(batch, r.raw);
        fetched := fetched + 1;
        IF NOT whole AND fetched % 500 = 0 THEN
            a := cyberbiz_replica_apply(server, rep.schema_name, table_name, whole, batch);
            batch := '{}';
            written := written + a.written;
            newest := greatest(newest, a.newest);
        END IF;
    END LOOP;
    a := cyberbiz_replica_apply(server, rep.schema_name, table_name, whole, batch);
    written := written + a.written;
    newest := greatest(newest, a.newest);
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

-- cyberbiz_sync_table takes the round's start now.
DROP PROCEDURE cyberbiz_sync_table(name, text, text);

-- Syncs one table and its children, committing after every step; returns the error of a
-- failed step (recorded in cyberbiz_replica_state).
CREATE PROCEDURE cyberbiz_sync_table(server name, table_name text, round_started timestamptz, INOUT error text DEFAULT NULL)
LANGUAGE plpgsql AS $fn$
DECLARE
    step record;
BEGIN
    LOOP
        SELECT * INTO step FROM cyberbiz_sync_step(server, table_name, round_started, true);
        COMMIT;
        error := step.error;
        EXIT WHEN step.done;
    END LOOP;
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
CREATE OR REPLACE PROCEDURE cyberbiz_sync(server name, tables text[] DEFAULT NULL)
LANGUAGE plpgsql AS $fn$
DECLARE
    round_started timestamptz := clock_timestamp();
    todo text[];
    t text;
    err text;
    failed text[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cyberbiz_replicas r WHERE r.server = cyberbiz_sync.server) THEN
        RAISE EXCEPTION 'server "%" has no replica', server USING ERRCODE = '42704', HINT = 'Create it first: SELECT cyberbiz_replicate(''' || server || ''', ''<schema>'');';
    END IF;
    SELECT array_agg(x.table_name) INTO todo FROM cyberbiz_sync_tables(server, tables) x;
    FOREACH t IN ARRAY coalesce(todo, '{}') LOOP
        err := NULL;
        CALL cyberbiz_sync_table(server, t, round_started, err);
        IF err IS NOT NULL THEN
            failed := failed || format('%s: %s', t, err);
        END IF;
    END LOOP;
    IF failed <> '{}' THEN
        RAISE EXCEPTION 'cyberbiz_sync of server "%": % of % tables failed', server, cardinality(failed), cardinality(todo)
            USING DETAIL = array_to_string(failed, E'\n'), HINT = 'The other tables are synced; SELECT * FROM cyberbiz_replica_status shows each table''s last error.';
    END IF;
END
$fn$;

-- What an event is about, the server of a delivery, the resource of a foreign table: from Rust,
-- as pgrx declares them.
CREATE  FUNCTION "cyberbiz_fdw_webhook_kind"(
	"event" TEXT /* & str */
) RETURNS TABLE (
	"resource" TEXT,  /* String */
	"verb" TEXT,  /* String */
	"deletes" bool  /* bool */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_webhook_kind_wrapper';
CREATE  FUNCTION "cyberbiz_fdw_webhook_server"(
	"shop_domain" TEXT /* Option < & str > */
) RETURNS TEXT /* String */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_webhook_server_wrapper';
CREATE  FUNCTION "cyberbiz_fdw_table_resource"(
	"foreign_table" oid /* pg_sys :: Oid */
) RETURNS TEXT /* Option < String > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_table_resource_wrapper';
ALTER FUNCTION cyberbiz_fdw_webhook_kind(text) ROWS 1;

-- cyberbiz_replica_apply_event takes the resource and whether the event deletes, as data.
DROP FUNCTION cyberbiz_replica_apply_event(name, text, jsonb);

-- Applies one accepted webhook payload about `resource` (`deletes`: it says the object is gone;
-- cyberbiz_fdw_webhook_kind) to the replica of `server`, decoded as a sync decodes the same
-- object. Returns whether a replica table of that resource exists.
CREATE FUNCTION cyberbiz_replica_apply_event(server name, resource text, deletes boolean, p jsonb) RETURNS boolean
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
    IF deletes AND st.parent IS NOT NULL THEN
        EXECUTE format('DELETE FROM %I.%I WHERE id = $1', rep.schema_name, resource) USING (p->>'id')::bigint;
    ELSIF deletes THEN
        EXECUTE format('UPDATE %I.%I SET _deleted_at = coalesce($2, now()), _synced_at = now() WHERE id = $1 AND _deleted_at IS NULL', rep.schema_name, resource)
            USING (p->>'id')::bigint, cyberbiz_taipei(p->>'updated_at');
    ELSE
        PERFORM cyberbiz_replica_apply(server, rep.schema_name, resource, false, ARRAY[p]);
    END IF;
    UPDATE cyberbiz_replica_state s SET last_webhook_at = now() WHERE s.server = st.server AND s.table_name = st.table_name;
    RETURN true;
END
$fn$;

-- A delivery is deduplicated per server: the same body for two shops is each one's (0.2.0 gave
-- the second shop the first one's event and never applied it).
ALTER TABLE cyberbiz_webhook_events DROP CONSTRAINT cyberbiz_webhook_events_dedupe_key_key, ADD UNIQUE (server, dedupe_key);

-- Verifies, stores and applies one webhook delivery; returns the event's id (the existing id
-- for a duplicate delivery, which stores nothing new). Pass the raw body text exactly as
-- received (never through json/jsonb: that reorders keys and breaks the signature), the
-- X-Cyberbiz-Event, X-Cyberbiz-Hmac-Sha256 and X-Cyberbiz-Domain header values. The server
-- whose user mapping holds the app_secret is `server`, else the one the receiver would pick
-- (cyberbiz_fdw_webhook_server: the server whose shop_domain is the delivery's, else the only
-- server with an app_secret, unless it is for another shop). The events table's `resource`
-- is the 0.1.0 kind name (products_deleted for products/delete).
-- JIT is off inside: every statement here is small, and a session's own jit settings (a BI
-- role's jit_above_cost = 0, say) must not make each delivery compile code.
CREATE OR REPLACE FUNCTION cyberbiz_ingest_webhook(body text, event text, signature text, shop_domain text DEFAULT NULL, server name DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    srv name := server;
    k record;
    p jsonb;
    kind text;
    rid bigint;
    upd timestamptz;
    key text;
    new_id bigint;
BEGIN
    IF body IS NULL OR event IS NULL THEN
        RAISE EXCEPTION 'webhook body and event are required' USING ERRCODE = '22004';
    END IF;
    IF srv IS NULL THEN
        srv := cyberbiz_fdw_webhook_server(cyberbiz_ingest_webhook.shop_domain);
    END IF;
    PERFORM cyberbiz_fdw_verify_webhook(body, signature, srv);
    SELECT * INTO STRICT k FROM cyberbiz_fdw_webhook_kind(event);
    kind := cyberbiz_fdw_webhook_resource(event);
    BEGIN
        p := body::jsonb;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'webhook body is not valid JSON: %', SQLERRM USING ERRCODE = '22P02';
    END;
    IF jsonb_typeof(p) <> 'object' THEN
        RAISE EXCEPTION 'webhook body is a JSON %, not an object', jsonb_typeof(p) USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(p->'id') = 'number' THEN
        rid := (p->>'id')::bigint;
    ELSIF k.resource <> 'app' THEN
        RAISE EXCEPTION 'webhook payload for % has no numeric id', event USING ERRCODE = '22023';
    END IF;
    BEGIN
        upd := cyberbiz_taipei(p->>'updated_at');
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'webhook payload has an unreadable updated_at: %', p->>'updated_at' USING ERRCODE = '22007';
    END;
    key := event || '|' || coalesce(rid::text, md5(body)) || '|' || coalesce(p->>'updated_at', '');
    INSERT INTO cyberbiz_webhook_events (event, shop_domain, server, resource, resource_id, resource_updated_at, payload, body, dedupe_key)
    VALUES (event, cyberbiz_ingest_webhook.shop_domain, srv, kind, rid, upd, p, body, key)
    ON CONFLICT ON CONSTRAINT cyberbiz_webhook_events_server_dedupe_key_key DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        SELECT e.id INTO new_id FROM cyberbiz_webhook_events e WHERE e.server = srv AND e.dedupe_key = key;
        RETURN new_id;
    END IF;
    -- The server's replica when it has one (sql/replica.sql), else the 0.1.0 mirrors
    -- (sql/mirrors.sql, which take the 0.1.0 kind name).
    IF NOT cyberbiz_replica_apply_event(srv, k.resource, k.deletes, p) AND NOT EXISTS (SELECT 1 FROM cyberbiz_replicas r WHERE r.server = srv) THEN
        PERFORM cyberbiz_mirror_apply(kind, p, k.verb = 'create');
    END IF;
    RETURN new_id;
END
$fn$;

-- Fills or refreshes a mirror through the FDW from a foreign table of orders, customers or
-- products (incrementally: rows updated since the last run, with the updated_at pushed down
-- where the API allows). Runs at the limiter's pace and can be cancelled.
CREATE OR REPLACE FUNCTION cyberbiz_backfill(foreign_table regclass) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    res text;
    since timestamptz;
    newest timestamptz;
    n bigint := 0;
    r record;
BEGIN
    res := cyberbiz_fdw_table_resource(foreign_table);
    IF res IS NULL OR res NOT IN ('orders', 'customers', 'products') THEN
        RAISE EXCEPTION '% is not a CYBERBIZ foreign table of orders, customers or products', foreign_table USING ERRCODE = '22023';
    END IF;
    SELECT st.last_updated_at INTO since FROM cyberbiz_backfill_state st WHERE st.source = foreign_table;
    FOR r IN EXECUTE CASE WHEN since IS NULL THEN format('SELECT raw FROM %s', foreign_table)
                          ELSE format('SELECT raw FROM %s WHERE updated_at >= $1', foreign_table) END USING since LOOP
        IF cyberbiz_mirror_apply(res, r.raw, false) THEN
            n := n + 1;
        END IF;
        newest := greatest(newest, cyberbiz_taipei(r.raw->>'updated_at'));
    END LOOP;
    INSERT INTO cyberbiz_backfill_state AS s (source, resource, last_updated_at, last_run_at)
    VALUES (foreign_table, res, coalesce(newest, since), now())
    ON CONFLICT (source) DO UPDATE SET last_updated_at = greatest(s.last_updated_at, excluded.last_updated_at), last_run_at = now();
    RETURN n;
END
$fn$;

-- IMPORT FOREIGN SCHEMA cannot return COMMENT statements: this event trigger applies the
-- catalog's comments (cyberbiz_fdw_catalog_comments()) to the tables just imported (the
-- resource of each read by cyberbiz_fdw_table_resource, as the validator reads options).
CREATE OR REPLACE FUNCTION cyberbiz_fdw_comment_imported() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    res text;
    c record;
BEGIN
    IF tg_tag <> 'IMPORT FOREIGN SCHEMA' THEN
        RETURN;
    END IF;
    FOR r IN
        SELECT d.objid
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_foreign_table ft ON ft.ftrelid = d.objid
        JOIN pg_foreign_server s ON s.oid = ft.ftserver
        JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        WHERE d.object_type = 'foreign table' AND w.fdwname = 'cyberbiz_fdw'
    LOOP
        res := cyberbiz_fdw_table_resource(r.objid);
        FOR c IN SELECT * FROM cyberbiz_fdw_catalog_comments() cc WHERE cc.resource = res LOOP
            IF c.column_name IS NULL THEN
                EXECUTE format('COMMENT ON FOREIGN TABLE %s IS %L', r.objid::regclass, c.comment);
            ELSIF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.objid AND a.attname = c.column_name AND NOT a.attisdropped) THEN
                EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', r.objid::regclass, c.column_name, c.comment);
            END IF;
        END LOOP;
    END LOOP;
END
$fn$;

-- Replaced by cyberbiz_replica_apply (objects as a parameter, no temporary table).
DROP FUNCTION cyberbiz_replica_apply_stage(name, name, text, boolean);
DROP FUNCTION cyberbiz_replica_stage();
