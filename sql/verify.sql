-- Verification: whether a replica table holds the shop's rows, found at a cost of a few
-- requests per table, and the repair of what differs (CALL cyberbiz_verify, and the scheduler
-- every cyberbiz.verify_interval). The counting and comparing are Rust (src/fdw/verify.rs); the
-- walk is here.
--
-- A table synced by updated_at (orders, customers) is compared by ranges of updated_at below
-- `verified_through` (2 minutes before its last completed sync began: later changes are the next
-- sync's). The replica's live rows there are cut into 16 ranges of about equal size, and the
-- API's X-Total of each range (one request each) is compared with the replica's count. A range
-- whose counts differ is halved (one request: the other half's count follows) until a range
-- holds at most 50 of the API's rows; that range's objects are read and compared by id and
-- updated_at. An object the replica lacks or holds older is applied (newest wins); a live
-- replica row the API did not list is asked for by id: applied if the shop has it (it changed
-- out of the range), marked deleted if it does not. So a row that differs costs about
-- log2(rows / 800) requests to find, one to read and one or two to confirm a deletion. Rows
-- without updated_at are in no range: their number is the API's total less the ranges and the
-- newer rows (counted before and after the ranges, and trusted only if the shop did not change
-- meanwhile), compared, not listed (the API cannot list them apart).
-- Another table is compared by its X-Total; when that differs, or the API gives none, its list
-- is read whole and compared row by row (a table without ids as a whole, replaced if it differs).
-- A pass makes its requests before it writes. After a pass that repaired something the table
-- is counted again (up to 3 passes, each in a transaction of its own): a difference can hide
-- another in its range (a row missing, another one too many) until it is repaired. Counts that
-- agree are taken as agreement.

-- What a verification of `table_name` of `server` finds, without writing anything: the rows it
-- compared (`api_rows`: counted by the API; below `through` for a table synced by updated_at),
-- the API objects the replica lacks or holds older (`stale`), the live replica rows the API
-- confirmed gone (`gone`), for a table without ids the list that replaces it (`replace`), and
-- `result` when it could not verify or found what it cannot repair.
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

-- The API's count of `src`'s rows with updated_at in [since, before); an error when the API
-- sends no X-Total (nothing could be verified by counts).
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

-- The range walk of cyberbiz_verify_find for a table synced by updated_at, below `through`:
-- the API's rows there (with those without updated_at), the objects that differ, the ids of
-- replica rows the API did not list, and `result` when the rows without updated_at differ.
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

-- One range [since, before) of the walk, of which the API counted `api_rows`: nothing when the
-- replica holds as many live rows there; else, when the API's rows there fit one page (or the
-- range cannot be cut), its objects are read and compared (`stale`, `unseen`); else the range
-- is cut at the replica's median (or its middle) and the halves, with the API's counts, are
-- returned to walk (`lo`, `hi`, `api`).
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

-- Applies what a verification of `table_name` of `server` found: the objects `stale` (newest
-- wins), the rows `gone` marked deleted, a table without ids replaced by `replace`. Returns the
-- rows changed.
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

-- One pass of the verification of replica table `table_name` of `server`
-- (cyberbiz_verify_find): repairs what differs (`changed` rows: the objects that differ applied,
-- newest wins; the rows confirmed gone marked deleted) and records the outcome in
-- cyberbiz_replica_state: `api_rows` as the API counted them, `replica_rows` as the replica
-- holds them after the repair, `repaired` (`repaired_before`, by earlier passes of this
-- verification, and this pass's), and `result`: 'equal', 'repaired', 'differs: ...' (what it
-- could not repair, for the next pass or verification), 'not verified: ...' or
-- 'failed: <error>' (nothing of the pass applied). Runs while no sync step of the server does
-- (their lock, held until the caller commits); `wait`: else returns 'not verified' at once,
-- recording nothing.
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

-- Whether the scheduler's verification of `table_name` of `server` is due: its first sync
-- complete, and its last verification (else that sync) `every` ago or longer.
CREATE FUNCTION cyberbiz_verify_due(server name, table_name text, every interval) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM cyberbiz_replica_state s
                   WHERE s.server = cyberbiz_verify_due.server AND s.table_name = cyberbiz_verify_due.table_name
                     AND s.full_started_at IS NULL AND s.last_full_sync IS NOT NULL
                     AND coalesce(s.verified_at, s.last_full_sync) <= clock_timestamp() - every)
$fn$;

-- Whether `table_name` of `server` is synced by updated_at and past its first sync: the
-- tables cyberbiz_verify brings up to date (one incremental step) before it verifies them.
CREATE FUNCTION cyberbiz_verify_syncs_first(server name, table_name text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM cyberbiz_replica_state s
                   WHERE s.server = cyberbiz_verify_syncs_first.server AND s.table_name = cyberbiz_verify_syncs_first.table_name
                     AND s.incremental AND s.full_started_at IS NULL AND s.last_full_sync IS NOT NULL)
$fn$;

-- Compares the replica of `server` (every table, or `tables` and their parents) with the shop
-- and repairs what differs, table after table (a few requests per table that agrees; see the
-- top of this file); a table synced by updated_at first gets its incremental sync step, so that
-- changes the shop made since the last sync are not taken for differences. Each pass of each
-- table commits on its own (a repaired row, and the table's status, are never held while it
-- waits on the API), so CALL it outside a transaction block. The outcome is in
-- cyberbiz_replica_status (api_rows, replica_rows, repaired, verify_result, verified_at), and a
-- NOTICE per table says it; it raises at the end if a table failed. Child tables
-- (order_line_items) are repaired with their parents.
-- Waits for a running sync step of the server. No fixed search_path (a procedure with one
-- cannot COMMIT): every name carries its schema.
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
