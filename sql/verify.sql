-- Verification: whether a replica table holds the shop's rows, found at a cost of a few
-- requests per table, and the repair of what differs (cyberbiz_verify, and the scheduler every
-- cyberbiz.verify_interval). The counting and comparing are Rust (src/fdw/verify.rs); the walk
-- is here.
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
-- log2(rows / 800) requests to find, one to read and one to confirm a deletion. Rows without
-- updated_at are in no range: their number is the API's total less the ranges and the newer
-- rows (two requests), compared, not listed (the API cannot list them apart).
-- Another table is compared by its X-Total; when that differs, or the API gives none, its list
-- is read whole and compared row by row (a table without ids is then replaced by it).
-- Counts that agree are taken as agreement: a row missing and another one too many in the same
-- range cancel out until either changes.

-- What a verification of `table_name` of `server` finds, without writing anything: the rows it
-- compared (`api_rows`: counted by the API; below `through` for a table synced by updated_at),
-- the API objects the replica lacks or holds older (`stale`), the live replica rows the API
-- confirmed gone (`gone`), for a table without ids the list that replaces it (`replace`), and
-- `result` when it could not verify.
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
        IF NOT EXISTS (SELECT 1 FROM cyberbiz_fdw_replica_tables(ARRAY[table_name]) t WHERE t.key = ARRAY['id']) THEN
            replace := objects;
            RETURN;
        END IF;
        SELECT * INTO STRICT c FROM cyberbiz_fdw_replica_compare(server, table_name, rep.schema_name, NULL, NULL, objects, read_at);
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
    undated bigint;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_verify_ranges.server;
    src := to_regclass(format('%I.%I', rep.source_schema, table_name));
    stale := '{}';
    unseen := '{}';
    SELECT * INTO STRICT sp FROM cyberbiz_fdw_replica_span(table_name, rep.schema_name, NULL, through, 16);
    bounds := array_append(array_prepend(NULL::timestamptz, sp.cuts), through);
    api_rows := 0;
    FOR i IN 1 .. cardinality(bounds) - 1 LOOP
        n := cyberbiz_fdw_api_count(src, bounds[i], bounds[i + 1]);
        api_rows := api_rows + n;
        lo := array_append(lo, bounds[i]);
        hi := array_append(hi, bounds[i + 1]);
        api := array_append(api, n);
    END LOOP;
    undated := cyberbiz_verify_undated(src, through, api_rows);
    IF undated <> sp.undated THEN
        -- Once more, in case the shop changed between the counts.
        undated := cyberbiz_verify_undated(src, through, api_rows);
    END IF;
    IF undated <> sp.undated THEN
        result := format('differs: %s rows without updated_at in the shop, %s in the replica (the API cannot list them apart: a first sync again would read them)', undated, sp.undated);
    END IF;
    api_rows := api_rows + undated;
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

-- The API's rows without updated_at: its total, less the rows updated from `through` on and
-- the `below` rows updated before it (two requests).
CREATE FUNCTION cyberbiz_verify_undated(src oid, through timestamptz, below bigint) RETURNS bigint
LANGUAGE sql AS $fn$
    SELECT cyberbiz_fdw_api_count(src, NULL, NULL) - cyberbiz_fdw_api_count(src, through, NULL) - below
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
    left_rows := cyberbiz_fdw_api_count(to_regclass(format('%I.%I', rep.source_schema, table_name)), since, cut);
    lo := ARRAY[since, cut];
    hi := ARRAY[cut, before];
    api := ARRAY[left_rows, api_rows - left_rows];
END
$fn$;

-- Verifies replica table `table_name` of `server` (cyberbiz_verify_find), repairs what differs
-- (the objects that differ applied, newest wins; the rows confirmed gone marked deleted) and
-- records the outcome in cyberbiz_replica_state: `api_rows` as the API counted them,
-- `replica_rows` as the replica holds them after the repair, rows `repaired`, and `result`:
-- 'equal', 'repaired', 'differs: ...' (what it could not repair, for the next verification),
-- 'not verified: ...' or 'failed: <error>' (nothing of it applied). Runs while no sync step of
-- the server does (their lock); `wait`: else returns 'not verified' at once, recording nothing.
-- A pass makes its requests before it writes; a pass after a repair (up to 3 passes, until one
-- finds nothing) runs while the rows repaired before it stay locked.
CREATE FUNCTION cyberbiz_verify_table(server name, table_name text, wait boolean,
    OUT api_rows bigint, OUT replica_rows bigint, OUT repaired bigint, OUT result text)
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    f record;
    through timestamptz;
    w bigint;
BEGIN
    IF NOT wait AND NOT pg_try_advisory_xact_lock(hashtext('cyberbiz_sync'), hashtext(server)) THEN
        result := 'not verified: a sync step of the server was running';
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('cyberbiz_sync'), hashtext(server));
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_verify_table.server;
    BEGIN
        PERFORM cyberbiz_replica_check(server, table_name);
        repaired := 0;
        -- A difference can hide another in the same range (one row missing, one too many):
        -- once the first is repaired, the counts show the second. Up to 3 passes, until one
        -- finds nothing.
        FOR pass IN 1..3 LOOP
            f := cyberbiz_verify_find(server, table_name);
            w := cyberbiz_verify_repair(server, table_name, f.stale, f.gone, f.replace);
            repaired := repaired + w;
            EXIT WHEN w = 0;
        END LOOP;
        through := f.through;
        api_rows := f.api_rows;
        SELECT s.rows + CASE WHEN through IS NULL THEN 0 ELSE s.undated END INTO replica_rows
        FROM cyberbiz_fdw_replica_span(table_name, rep.schema_name, NULL, through, 1) s;
        result := coalesce(f.result,
            CASE WHEN api_rows IS DISTINCT FROM replica_rows THEN format('differs: %s rows in the shop, %s in the replica after %s repaired; the next verification looks again', api_rows, replica_rows, repaired)
                 WHEN repaired > 0 THEN 'repaired'
                 ELSE 'equal' END);
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS result = MESSAGE_TEXT;
        result := 'failed: ' || result;
        repaired := 0;
    END;
    IF result NOT LIKE 'not verified%' THEN
        UPDATE cyberbiz_replica_state s
        SET verified_at = clock_timestamp(), verified_through = through, api_rows = cyberbiz_verify_table.api_rows,
            replica_rows = cyberbiz_verify_table.replica_rows, repaired = cyberbiz_verify_table.repaired, verify_result = cyberbiz_verify_table.result
        WHERE s.server = rep.server AND s.table_name = cyberbiz_verify_table.table_name;
    END IF;
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

-- Compares the replica of `server` (every table, or `tables` and their parents) with the shop
-- and repairs what differs, one table after another (a few requests per table that agrees;
-- see the top of this file); returns, per table, the rows counted in the API and in the
-- replica (after repair), the rows repaired and the result, as cyberbiz_replica_status keeps
-- them. Child tables (order_line_items) are repaired with their parents. Waits for a running
-- sync step of the server; sync steps wait for it. One transaction: a repaired row stays
-- locked until the call ends.
CREATE FUNCTION cyberbiz_verify(server name, tables text[] DEFAULT NULL)
RETURNS TABLE (table_name text, api_rows bigint, replica_rows bigint, repaired bigint, result text)
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY cyberbiz_sync_plan(server, tables) LOOP
        RETURN QUERY SELECT t, v.api_rows, v.replica_rows, v.repaired, v.result FROM cyberbiz_verify_table(server, t, true) v;
    END LOOP;
END
$fn$;

-- The scheduler's verification of `table_name` of `server` when it is due: its first sync
-- complete, and its last verification (else that sync) `every` ago or longer. A server whose
-- sync step another driver runs is left for the next round. Returns the result (NULL: not
-- run).
CREATE FUNCTION cyberbiz_verify_step(server name, table_name text, every interval) RETURNS text
LANGUAGE plpgsql SET jit = off AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cyberbiz_replica_state s
                   WHERE s.server = cyberbiz_verify_step.server AND s.table_name = cyberbiz_verify_step.table_name
                     AND s.full_started_at IS NULL AND s.last_full_sync IS NOT NULL
                     AND coalesce(s.verified_at, s.last_full_sync) <= clock_timestamp() - every) THEN
        RETURN NULL;
    END IF;
    RETURN nullif((cyberbiz_verify_table(server, table_name, false)).result, 'not verified: a sync step of the server was running');
END
$fn$;
