-- The foreign data wrapper itself (pgrx adds the handler and validator functions before it).
CREATE FOREIGN DATA WRAPPER cyberbiz_fdw
    HANDLER cyberbiz_fdw_handler
    VALIDATOR cyberbiz_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER cyberbiz_fdw IS 'CYBERBIZ e-commerce API (https://app-store-api.cyberbiz.io) as foreign tables';
