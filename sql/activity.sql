-- Running CYBERBIZ scans of the cluster (when preloaded), as pg_stat_progress_copy shows COPY.
CREATE VIEW cyberbiz_stat_activity AS
SELECT pid, table_name, request, pages_done, pages_total, rows, requests, throttled, limiter_wait_ms,
       to_timestamp(started_ms / 1000.0) AS started, to_timestamp(finish_ms / 1000.0) AS estimated_finish
FROM cyberbiz_fdw_activity();
COMMENT ON VIEW cyberbiz_stat_activity IS 'Running CYBERBIZ scans (cluster-wide when cyberbiz_fdw is preloaded): table, request, pages done of total, rows, requests, 429s, limiter wait, estimated finish';
