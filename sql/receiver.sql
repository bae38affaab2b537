-- The webhook receiver's counters (a background worker of a preloaded cluster with
-- cyberbiz.webhook_listen set): deliveries accepted, redeliveries, refusals by reason, errors,
-- latency. Empty when the library is not preloaded.
CREATE VIEW cyberbiz_stat_receiver AS SELECT * FROM cyberbiz_fdw_receiver_stats();
COMMENT ON VIEW cyberbiz_stat_receiver IS 'CYBERBIZ webhook receiver (background worker): where it listens, deliveries accepted, duplicates, refusals by reason, errors, latency';
