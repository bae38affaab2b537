-- The webhook receiver's counters (a background worker of a preloaded cluster with
-- cyberbiz.webhook_listen set): deliveries accepted, redeliveries, refusals by reason, errors,
-- latency, peers refused for want of room (tests: limits in src/receiver.rs), why it does not
-- listen (listen_error; a failed bind is tried again every 5 s). Empty when the library is not
-- preloaded; pid is NULL while the worker is down (the postmaster starts it again in 5 s).
CREATE VIEW cyberbiz_stat_receiver AS SELECT * FROM cyberbiz_fdw_receiver_stats();
COMMENT ON VIEW cyberbiz_stat_receiver IS 'CYBERBIZ webhook receiver (background worker): where it listens (or why not), deliveries accepted, duplicates, refusals by reason, errors, latency';
