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
