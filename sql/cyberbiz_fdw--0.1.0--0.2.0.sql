-- cyberbiz_fdw 0.1.0 -> 0.2.0: ALTER EXTENSION cyberbiz_fdw UPDATE runs this. It changes
-- definitions only and keeps every row of the extension's tables (webhook events, mirrors,
-- backfill state). tests/pg_regress/sql/upgrade.sql installs 0.1.0 as released, stores rows,
-- updates, and checks that the rows are still there and that every object of the extension is
-- defined exactly as a fresh 0.2.0 install defines it.
\echo Use "ALTER EXTENSION cyberbiz_fdw UPDATE" to load this file. \quit

-- cyberbiz_taipei casts text to timestamp, which is STABLE (it reads DateStyle and the zone
-- database), so the function is STABLE too, not IMMUTABLE.
ALTER FUNCTION cyberbiz_taipei(text) STABLE;

-- One request budget per API token for the whole cluster (shared memory, when preloaded): the
-- functions behind it and the view of the budgets.
CREATE FUNCTION "cyberbiz_fdw_budgets"() RETURNS TABLE (
	"server" TEXT,
	"requests_last_minute" bigint,
	"requests" bigint,
	"throttled" bigint,
	"waiting" bigint,
	"next_free_ms" bigint,
	"interval_ms" double precision
)
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_budgets_wrapper';
CREATE FUNCTION "cyberbiz_fdw_shared_budgets"() RETURNS bool
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_shared_budgets_wrapper';
CREATE VIEW cyberbiz_stat_budgets AS SELECT * FROM cyberbiz_fdw_budgets();
COMMENT ON VIEW cyberbiz_stat_budgets IS 'CYBERBIZ request budgets (one per API token, cluster-wide when cyberbiz_fdw is preloaded): requests in the last minute, 429s, requests waiting, next free slot';

-- Live progress of scans (shared memory, when preloaded): the function and the view.
CREATE FUNCTION "cyberbiz_fdw_activity"() RETURNS TABLE (
	"pid" INT,
	"table_name" TEXT,
	"request" TEXT,
	"pages_done" bigint,
	"pages_total" bigint,
	"rows" bigint,
	"requests" bigint,
	"throttled" bigint,
	"limiter_wait_ms" bigint,
	"started_ms" bigint,
	"finish_ms" bigint
)
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'cyberbiz_fdw_activity_wrapper';
CREATE VIEW cyberbiz_stat_activity AS
SELECT pid, table_name, request, pages_done, pages_total, rows, requests, throttled, limiter_wait_ms,
       to_timestamp(started_ms / 1000.0) AS started, to_timestamp(finish_ms / 1000.0) AS estimated_finish
FROM cyberbiz_fdw_activity();
COMMENT ON VIEW cyberbiz_stat_activity IS 'Running CYBERBIZ scans (cluster-wide when cyberbiz_fdw is preloaded): table, request, pages done of total, rows, requests, 429s, limiter wait, estimated finish';
