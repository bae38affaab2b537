-- The cluster's request budgets (one per api_url + token; shared memory, when preloaded): who
-- uses them, how busy they are, how many requests wait. Never the token.
CREATE VIEW cyberbiz_stat_budgets AS SELECT * FROM cyberbiz_fdw_budgets();
COMMENT ON VIEW cyberbiz_stat_budgets IS 'CYBERBIZ request budgets (one per API token, cluster-wide when cyberbiz_fdw is preloaded): requests in the last minute, 429s, requests waiting, next free slot';
