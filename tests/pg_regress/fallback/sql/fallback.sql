-- Not preloaded (this server has no shared_preload_libraries): requests are paced per backend,
-- the first request of a backend warns once how to preload, and everything else works.
\set VERBOSITY default
\set SHOW_CONTEXT never
\getenv api_url CYBERBIZ_TEST_API_URL
\getenv api_token CYBERBIZ_TEST_API_TOKEN
CREATE EXTENSION cyberbiz_fdw;
SELECT cyberbiz_fdw_shared_budgets() AS shared;
CREATE SERVER shop FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (api_token :'api_token');
CREATE FOREIGN TABLE orders (id bigint, financial_status text) SERVER shop OPTIONS (resource 'orders');
SELECT count(*) > 0 AS read FROM orders;
SELECT count(*) > 0 AS read_again FROM orders WHERE financial_status = 'paid';
SELECT count(*) AS budgets FROM cyberbiz_fdw_budgets();
