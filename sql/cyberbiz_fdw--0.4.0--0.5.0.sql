-- cyberbiz_fdw 0.4.0 -> 0.5.0. Keeps every row: no table changes here.
--
-- A sync step decodes the objects it reads while its scan goes on, and writes them once every
-- page is read, so the replica rows it changes are locked only while they are written, not for
-- the seconds the scan waits on the API: a webhook about one of them no longer waits for the
-- sync (cyberbiz_replica_fetch, cyberbiz_fdw_replica_rows; cyberbiz_fdw_replica_apply and
-- cyberbiz_replica_apply take the decoded rows). An object is decoded once for its table and
-- its child tables. Time bounds reach the FDW as parameters, never as text the session's
-- DateStyle and TimeZone could misread (cyberbiz_replica_fetch, cyberbiz_replica_any_before).
-- The definitions below are copies of sql/replica.sql and of the generated functions (an
-- upgrade script must stand alone); the `upgrade` regression test fails if they drift. The
-- block at the end is sql/search_path.sql.

DROP FUNCTION cyberbiz_replica_apply(name, name, text, boolean, jsonb[]);
DROP FUNCTION cyberbiz_fdw_replica_apply(text, text, text, boolean, jsonb[]);

CREATE  FUNCTION "cyberbiz_fdw_replica_rows"(
	"server" TEXT, /* & str */
	"resource" TEXT, /* & str */
	"objects" jsonb[], /* Array < '_, JsonB > */
	"first" bigint /* i64 */
) RETURNS jsonb /* JsonB */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_replica_rows_wrapper';

CREATE  FUNCTION "cyberbiz_fdw_replica_apply"(
	"server" TEXT, /* & str */
	"resource" TEXT, /* & str */
	"schema" TEXT, /* & str */
	"whole" bool, /* bool */
	"objects" jsonb[], /* Array < '_, JsonB > */
	"rows" jsonb[] DEFAULT NULL /* :: std :: option :: Option < Array < '_, JsonB > > */
) RETURNS TABLE (
	"written" bigint,  /* i64 */
	"newest" timestamp with time zone  /* Option < TimestampWithTimeZone > */
)
VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_replica_apply_wrapper';
ALTER FUNCTION cyberbiz_fdw_replica_apply(text, text, text, boolean, jsonb[], jsonb[]) ROWS 1 SET jit = off SET enable_seqscan = off;

CREATE FUNCTION cyberbiz_replica_apply(server name, schema_name name, table_name text, whole boolean, objects jsonb[], rows jsonb[] DEFAULT NULL,
    OUT written bigint, OUT newest timestamptz)
LANGUAGE plpgsql SET jit = off AS $fn$
BEGIN
    SELECT a.written, a.newest INTO written, newest FROM cyberbiz_fdw_replica_apply(server, table_name, schema_name, whole, objects, rows) a;
END
$fn$;

CREATE OR REPLACE FUNCTION cyberbiz_replica_fetch(server name, table_name text, since timestamptz, before timestamptz, whole boolean,
    OUT fetched bigint, OUT written bigint, OUT newest timestamptz)
-- JIT costs more than it saves on these statements (their estimates are guesses).
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    rep cyberbiz_replicas;
    objects jsonb[] := '{}';
    batch jsonb[] := '{}';
    rows jsonb[] := '{}';
    o record;
    a record;
BEGIN
    SELECT * INTO STRICT rep FROM cyberbiz_replicas x WHERE x.server = cyberbiz_replica_fetch.server;
    fetched := 0;
    FOR o IN EXECUTE format('SELECT f.raw FROM %I.%I f', rep.source_schema, table_name)
                     || CASE WHEN since IS NULL AND before IS NULL THEN ''
                             WHEN before IS NULL THEN ' WHERE f.updated_at >= $1'
                             WHEN since IS NULL THEN ' WHERE f.updated_at < $2'
                             ELSE ' WHERE f.updated_at >= $1 AND f.updated_at < $2' END
                 USING since, before LOOP
        objects := array_append(objects, o.raw);
        batch := array_append(batch, o.raw);
        fetched := fetched + 1;
        IF fetched % 500 = 0 THEN
            rows := array_append(rows, cyberbiz_fdw_replica_rows(server, table_name, batch, fetched - 500));
            batch := '{}';
        END IF;
    END LOOP;
    rows := array_append(rows, cyberbiz_fdw_replica_rows(server, table_name, batch, fetched - cardinality(batch)));
    a := cyberbiz_replica_apply(server, rep.schema_name, table_name, whole, objects, rows);
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
