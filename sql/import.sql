-- IMPORT FOREIGN SCHEMA cannot return COMMENT statements: this event trigger applies the
-- catalog's comments (cyberbiz_fdw_catalog_comments()) to the tables just imported (the
-- resource of each read by cyberbiz_fdw_table_resource, as the validator reads options).
CREATE FUNCTION cyberbiz_fdw_comment_imported() RETURNS event_trigger
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
CREATE EVENT TRIGGER cyberbiz_fdw_comment_imported ON ddl_command_end
    WHEN TAG IN ('IMPORT FOREIGN SCHEMA')
    EXECUTE FUNCTION cyberbiz_fdw_comment_imported();
