-- cyberbiz_fdw 0.4.0 -> 0.5.0. Keeps every row: no table changes here.
--
-- A sync step reads every page of its window before it writes, so the replica rows it changes
-- are locked only while they are applied, not for the seconds the scan waits on the API: a
-- webhook about one of them no longer waits for the sync (cyberbiz_replica_fetch). First-sync
-- windows aim at 1,000 to 4,000 rows (were 2,500 to 10,000), so that applying one holds its
-- rows about 2 s at most (cyberbiz_replica_step). Time bounds reach the FDW as parameters,
-- never as text the session's DateStyle and TimeZone could misread (cyberbiz_replica_fetch,
-- cyberbiz_replica_any_before). A whole refresh no longer marks every row it did not see
-- deleted: only rows written before it began that the API, asked by id, no longer has
-- (cyberbiz_replica_gone, cyberbiz_fdw_replica_missing). A `*/create` webhook
-- never replaces a row of the same updated_at (cyberbiz_fdw_replica_apply and
-- cyberbiz_replica_apply_event take `creates`: dropped and created again; the pass-through
-- cyberbiz_replica_apply is dropped, its callers call cyberbiz_fdw_replica_apply). A read during which the
-- shop's list shrank (X-Total fell) is done again; after 3 such reads the step fails, applying
-- nothing (cyberbiz_fdw_shifted_scans).
-- A verified delivery without (or with an unknown) X-Cyberbiz-Event is kept: taken for what its
-- payload's shape says without doubt (cyberbiz_fdw_webhook_event), else stored as unclassified
-- (the view cyberbiz_webhook_unclassified).
-- Deliveries are deduplicated on (event, id, updated_at, body): two changes of one object within
-- a second are both applied (cyberbiz_ingest_webhook); stored events' keys are rewritten so. Replica tables without a key get REPLICA
-- IDENTITY FULL. (What the Rust apply now does differently needs no SQL: an object without
-- updated_at never replaces a row that has one; one without its child array leaves the children
-- as they are; a keyless table is never written by a webhook.)
-- The definitions below are copies of sql/replica.sql and sql/webhooks.sql (an upgrade script must stand alone); the
-- `upgrade` regression test fails if they drift. The block at the end is sql/search_path.sql.

DROP FUNCTION cyberbiz_replica_apply(name, name, text, boolean, jsonb[]);
DROP FUNCTION cyberbiz_fdw_replica_apply(text, text, text, boolean, jsonb[]);
CREATE  FUNCTION "cyberbiz_fdw_replica_apply"(
	"server" TEXT, /* & str */
	"resource" TEXT, /* & str */
	"schema" TEXT, /* & str */
	"whole" bool, /* bool */
	"objects" jsonb[], /* Array < '_, JsonB > */
	"creates" bool DEFAULT false /* bool */
) RETURNS TABLE (
	"written" bigint,  /* i64 */
	"newest" timestamp with time zone  /* Option < TimestampWithTimeZone > */
)
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_replica_apply_wrapper';
ALTER FUNCTION cyberbiz_fdw_replica_apply(text, text, text, boolean, jsonb[], boolean) ROWS 1 SET jit = off SET enable_seqscan = off;

DROP FUNCTION cyberbiz_replica_apply_event(name, text, boolean, jsonb);
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

CREATE  FUNCTION "cyberbiz_fdw_replica_missing"(
	"resource" TEXT, /* & str */
	"schema" TEXT, /* & str */
	"seen" bigint[], /* Vec < i64 > */
	"before" timestamp with time zone /* TimestampWithTimeZone */
) RETURNS bigint[] /* Vec < i64 > */
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_replica_missing_wrapper';

CREATE  FUNCTION "cyberbiz_fdw_shifted_scans"() RETURNS bigint /* i64 */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_shifted_scans_wrapper';

CREATE OR REPLACE FUNCTION cyberbiz_replica_fetch(server name, table_name text, since timestamptz, before timestamptz, whole boolean,
    OUT fetched bigint, OUT written bigint, OUT newest timestamptz)
-- JIT costs more than it saves on these statements (their estimates are guesses).
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    objects jsonb[];
    gone bigint[] := '{}';
    shifts bigint;
    id bigint;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_fetch.server;
    FOR attempt IN 1..4 LOOP
        IF attempt = 4 THEN
            RAISE EXCEPTION 'the shop''s list of % shrank during each of 3 reads of %: rows may have been skipped, so nothing was applied; the next sync reads it again',
                table_name, CASE WHEN since IS NULL AND before IS NULL THEN 'the table' ELSE 'an updated_at window' END
                USING ERRCODE = '40001';
        END IF;
        shifts := cyberbiz_fdw_shifted_scans();
        EXECUTE format('SELECT coalesce(array_agg(f.raw), ''{}'') FROM %I.%I f', rep.source_schema, table_name)
                || CASE WHEN since IS NULL AND before IS NULL THEN ''
                        WHEN before IS NULL THEN ' WHERE f.updated_at >= $1'
                        WHEN since IS NULL THEN ' WHERE f.updated_at < $2'
                        ELSE ' WHERE f.updated_at >= $1 AND f.updated_at < $2' END
            INTO objects USING since, before;
        EXIT WHEN cyberbiz_fdw_shifted_scans() = shifts;
    END LOOP;
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

CREATE OR REPLACE FUNCTION cyberbiz_replica_gone(server name, table_name text, objects jsonb[]) RETURNS bigint[]
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    seen bigint[];
    missing bigint[];
    batch bigint[];
    present bigint[];
    shifts bigint;
    gone bigint[] := '{}';
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_gone.server;
    SELECT coalesce(array_agg((o->>'id')::bigint), '{}') INTO seen FROM unnest(objects) o WHERE jsonb_typeof(o->'id') = 'number';
    missing := cyberbiz_fdw_replica_missing(table_name, rep.schema_name, seen, now());
    FOR pos IN 1 .. cardinality(missing) BY 50 LOOP
        batch := missing[pos : pos + 49];
        shifts := cyberbiz_fdw_shifted_scans();
        EXECUTE format('SELECT coalesce(array_agg(f.id), ''{}'') FROM %I.%I f WHERE f.id = ANY ($1)', rep.source_schema, table_name)
            INTO present USING batch;
        IF cyberbiz_fdw_shifted_scans() = shifts THEN
            gone := gone || ARRAY(SELECT b FROM unnest(batch) b WHERE b <> ALL (present));
        END IF;
    END LOOP;
    RETURN gone;
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

CREATE  FUNCTION "cyberbiz_fdw_webhook_event"(
	"event" TEXT, /* Option < & str > */
	"payload" jsonb /* JsonB */
) RETURNS TEXT /* Option < String > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_webhook_event_wrapper';

-- Verified deliveries no event could be found for: kept, applied to nothing. Look at them, and
-- refresh what they name (CALL cyberbiz_sync) if they matter.
CREATE VIEW cyberbiz_webhook_unclassified AS
SELECT e.id, e.received_at, e.event, e.shop_domain, e.server, e.resource_id, e.payload
FROM cyberbiz_webhook_events e WHERE e.resource = 'unclassified';
COMMENT ON VIEW cyberbiz_webhook_unclassified IS 'CYBERBIZ webhook deliveries stored without a known event (no or an unknown X-Cyberbiz-Event, and a payload of no clear shape)';

CREATE OR REPLACE FUNCTION cyberbiz_ingest_webhook(body text, event text, signature text, shop_domain text DEFAULT NULL, server name DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    srv name := server;
    ev text;
    k record;
    p jsonb;
    kind text;
    rid bigint;
    upd timestamptz;
    key text;
    new_id bigint;
BEGIN
    IF body IS NULL THEN
        RAISE EXCEPTION 'webhook body is required' USING ERRCODE = '22004';
    END IF;
    IF srv IS NULL THEN
        srv := cyberbiz_fdw_webhook_server(cyberbiz_ingest_webhook.shop_domain);
    END IF;
    PERFORM cyberbiz_fdw_verify_webhook(body, signature, srv);
    BEGIN
        p := body::jsonb;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'webhook body is not valid JSON: %', SQLERRM USING ERRCODE = '22P02';
    END;
    IF jsonb_typeof(p) <> 'object' THEN
        RAISE EXCEPTION 'webhook body is a JSON %, not an object', jsonb_typeof(p) USING ERRCODE = '22023';
    END IF;
    -- The event it is: the header when CYBERBIZ documents it, else what the payload's shape says
    -- without doubt, else none: stored as unclassified (cyberbiz_webhook_unclassified), applied
    -- to nothing, never refused (the platform would drop it after its resends).
    ev := cyberbiz_fdw_webhook_event(nullif(event, ''), p);
    IF ev IS NULL THEN
        kind := 'unclassified';
        rid := CASE WHEN (p->>'id') ~ '^-?[0-9]{1,18}$' THEN (p->>'id')::bigint END;
    ELSE
        SELECT * INTO STRICT k FROM cyberbiz_fdw_webhook_kind(ev);
        kind := cyberbiz_fdw_webhook_resource(ev);
        IF jsonb_typeof(p->'id') = 'number' THEN
            rid := (p->>'id')::bigint;
        ELSIF k.resource <> 'app' THEN
            RAISE EXCEPTION 'webhook payload for % has no numeric id', ev USING ERRCODE = '22023';
        END IF;
        BEGIN
            upd := cyberbiz_taipei(p->>'updated_at');
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'webhook payload has an unreadable updated_at: %', p->>'updated_at' USING ERRCODE = '22007';
        END;
    END IF;
    -- A redelivery is the same body again; two changes of one object within one second (the
    -- resolution of updated_at) are two bodies, both stored and applied.
    key := coalesce(ev, event, '') || '|' || coalesce(rid::text, '') || '|' || coalesce(p->>'updated_at', '') || '|' || md5(body);
    INSERT INTO cyberbiz_webhook_events (event, shop_domain, server, resource, resource_id, resource_updated_at, payload, body, dedupe_key)
    VALUES (coalesce(ev, event, ''), cyberbiz_ingest_webhook.shop_domain, srv, kind, rid, upd, p, body, key)
    ON CONFLICT ON CONSTRAINT cyberbiz_webhook_events_server_dedupe_key_key DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        SELECT e.id INTO new_id FROM cyberbiz_webhook_events e WHERE e.server = srv AND e.dedupe_key = key;
        RETURN new_id;
    END IF;
    IF ev IS NULL THEN
        RETURN new_id;
    END IF;
    -- The server's replica when it has one (sql/replica.sql), else the 0.1.0 mirrors
    -- (sql/mirrors.sql, which take the 0.1.0 kind name).
    IF NOT cyberbiz_replica_apply_event(srv, k.resource, k.deletes, p, k.verb = 'create') AND NOT EXISTS (SELECT 1 FROM cyberbiz_replicas r WHERE r.server = srv) THEN
        PERFORM cyberbiz_mirror_apply(kind, p, k.verb = 'create');
    END IF;
    RETURN new_id;
END
$fn$;

-- Events stored before keep being recognised when redelivered: their keys take the new form.
UPDATE cyberbiz_webhook_events e
SET dedupe_key = e.event || '|' || coalesce(e.resource_id::text, '') || '|' || coalesce(e.payload->>'updated_at', '') || '|' || md5(e.body)
WHERE e.body IS NOT NULL;

-- Replica tables without a key get REPLICA IDENTITY FULL (as cyberbiz_replicate now creates
-- them), so that a replica schema can be published with logical replication.
DO $identity$
DECLARE
    t regclass;
BEGIN
    -- (Only a table in its recorded place: cyberbiz_replica_state is writable by the workers' role.)
    FOR t IN SELECT s.relid::regclass FROM cyberbiz_replica_state s JOIN cyberbiz_replicas r ON r.server = s.server JOIN pg_class c ON c.oid = s.relid
             WHERE c.relkind = 'r' AND c.oid = to_regclass(format('%I.%I', r.schema_name, s.table_name)) AND c.relnamespace = r.schema_oid AND cardinality((SELECT x.key FROM cyberbiz_fdw_replica_tables(ARRAY[s.table_name]) x WHERE x.table_name = s.table_name)) = 0 LOOP
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', t);
    END LOOP;
END
$identity$;

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
