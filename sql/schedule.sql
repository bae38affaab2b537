-- The scheduler's rounds, one shop (server) per sync worker at a time (src/fdw/scheduler.rs
-- starts the workers, src/fdw/rounds.rs is what each runs). A round of a server is due when
-- no sync worker runs one and either its next scheduled round has come (every table's
-- incremental step, then first-sync windows, then due verifications) or one of its tables has
-- first-sync windows left (a round of windows only). Scheduled rounds are claimed before rounds
-- of windows only, the longest due first; rounds of windows only go to the server served least
-- recently. So a first sync of one shop never holds another shop's incremental syncs. The claim
-- is a row of cyberbiz_replicas (round_pid, round_started_at, round_seconds, next_round_at,
-- round_claimed_at), shown by cyberbiz_sync_schedule.

-- cyberbiz.sync_interval as an interval; NULL when it is 0 (off) or unknown (not preloaded).
CREATE FUNCTION cyberbiz_sync_every() RETURNS interval
LANGUAGE sql STABLE AS $fn$
    SELECT CASE WHEN coalesce(current_setting('cyberbiz.sync_interval', true), '0') NOT IN ('', '0')
                THEN current_setting('cyberbiz.sync_interval', true)::interval END
$fn$;

-- Whether `pid` is a sync worker that is still running (it may hold a round). SECURITY DEFINER
-- (a boolean, nothing else): Postgres shows another role's backend type only to roles with
-- pg_read_all_stats, and cyberbiz_sync_schedule must not say 'due' to others while a shop
-- syncs. Reads the backends as they are now, not as this transaction first saw them.
CREATE FUNCTION cyberbiz_round_busy(pid integer) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER AS $fn$
    SELECT pg_stat_clear_snapshot();
    SELECT pid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_stat_get_activity(pid) a WHERE a.backend_type = 'cyberbiz_fdw sync worker');
$fn$;

-- Whether a table of `server` has first-sync windows left (a first sync by updated_at that has
-- not ended, or not begun) and no failed step since `since` (the start of the last scheduled
-- round): a table whose step failed is tried again by the next scheduled round, not at once.
CREATE FUNCTION cyberbiz_round_windows(server name, since timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM cyberbiz_replica_state s
                   WHERE s.server = cyberbiz_round_windows.server AND s.parent IS NULL AND s.incremental
                     AND (s.full_started_at IS NOT NULL OR s.last_full_sync IS NULL)
                     AND (s.last_error_at IS NULL OR s.last_error_at < since))
$fn$;

-- When the next scheduled round of `r` is due: as recorded, or sooner if cyberbiz.sync_interval
-- was lowered since (NULL: now).
CREATE FUNCTION cyberbiz_round_next(r cyberbiz_replicas) RETURNS timestamptz
LANGUAGE sql STABLE AS $fn$
    SELECT least(r.next_round_at, r.round_started_at + cyberbiz_sync_every())
$fn$;

-- Whether a round of `r` may start now (see the top of this file).
CREATE FUNCTION cyberbiz_round_due(r cyberbiz_replicas) RETURNS boolean
LANGUAGE sql VOLATILE AS $fn$
    SELECT EXISTS (SELECT 1 FROM cyberbiz_replica_state s WHERE s.server = r.server AND s.parent IS NULL)
       AND (coalesce(cyberbiz_round_next(r) <= clock_timestamp(), true) OR cyberbiz_round_windows(r.server, r.round_started_at))
       AND NOT cyberbiz_round_busy(r.round_pid)
$fn$;

-- How many servers have a round due that no sync worker has claimed, and how many sync workers
-- run: the scheduler starts workers for the rounds waiting, within cyberbiz.sync_workers running
-- (counted here, so the workers of a scheduler that was restarted count too).
CREATE FUNCTION cyberbiz_rounds_waiting(OUT waiting bigint, OUT running bigint)
LANGUAGE sql VOLATILE AS $fn$
    SELECT (SELECT count(*) FROM cyberbiz_replicas r WHERE cyberbiz_round_due(r)),
           (SELECT count(*) FROM pg_stat_get_activity(NULL) a WHERE a.backend_type = 'cyberbiz_fdw sync worker')
$fn$;

-- Claims for the calling sync worker the round due longest (NULL server: none is due):
-- `scheduled` when its next scheduled round has come (it begins now, and the next is due one
-- cyberbiz.sync_interval later), else a round of first-sync windows only. Workers claiming at
-- once skip each other's rows; the row locked is checked again as it is now (the backends
-- included: a worker that claimed it since this transaction began is seen). A claim the caller's pid still holds is stale (a worker whose round did not
-- end, or one that ended without ending it and whose pid this worker now has: a worker claims
-- only while it holds no round), and is dropped first.
CREATE FUNCTION cyberbiz_round_claim(OUT server name, OUT scheduled boolean, OUT started timestamptz)
LANGUAGE plpgsql AS $fn$
DECLARE
    r cyberbiz_replicas;
BEGIN
    UPDATE cyberbiz_replicas x SET round_pid = NULL WHERE x.round_pid = pg_backend_pid();
    SELECT * INTO r FROM cyberbiz_replicas x WHERE cyberbiz_round_due(x)
    ORDER BY coalesce(cyberbiz_round_next(x) > clock_timestamp(), false), cyberbiz_round_next(x) NULLS FIRST, x.round_claimed_at NULLS FIRST, x.server
    LIMIT 1 FOR NO KEY UPDATE OF x SKIP LOCKED;
    IF r.server IS NULL OR NOT cyberbiz_round_due(r) THEN
        RETURN;
    END IF;
    server := r.server;
    started := clock_timestamp();
    scheduled := coalesce(cyberbiz_round_next(r) <= started, true);
    UPDATE cyberbiz_replicas x SET round_pid = pg_backend_pid(), round_claimed_at = started,
        round_started_at = CASE WHEN scheduled THEN started ELSE x.round_started_at END,
        next_round_at = CASE WHEN scheduled THEN started + coalesce(cyberbiz_sync_every(), interval '0') ELSE x.next_round_at END
    WHERE x.server = r.server;
END
$fn$;

-- The parent tables of `server` a round syncs, in its order: those past their first sync (one
-- step each) before those with first-sync windows left (`windows`).
CREATE FUNCTION cyberbiz_round_tables(server name, OUT table_name text, OUT windows boolean) RETURNS SETOF record
LANGUAGE sql STABLE ROWS 25 AS $fn$
    SELECT s.table_name, s.incremental AND (s.full_started_at IS NOT NULL OR s.last_full_sync IS NULL)
    FROM cyberbiz_replica_state s
    WHERE s.server = cyberbiz_round_tables.server AND s.parent IS NULL
    ORDER BY 2, 1
$fn$;

-- Ends the calling worker's round of `server`; a scheduled round records how long it took.
CREATE FUNCTION cyberbiz_round_end(server name, scheduled boolean) RETURNS void
LANGUAGE sql AS $fn$
    UPDATE cyberbiz_replicas r SET round_pid = NULL,
        round_seconds = CASE WHEN scheduled THEN extract(epoch FROM clock_timestamp() - r.round_started_at)::double precision ELSE r.round_seconds END
    WHERE r.server = cyberbiz_round_end.server AND r.round_pid = pg_backend_pid()
$fn$;

-- The scheduler per server: whether a sync worker runs its round now (and which), is due (waits
-- for a worker: cyberbiz.sync_workers caps how many run at once), or waits for next_sync_at;
-- when its last scheduled round began and how long it took; how far behind the shop its
-- replica may be (since the start of the oldest last sync of its tables; NULL while a table has
-- never been synced); its tables, and those still in their first sync.
CREATE VIEW cyberbiz_sync_schedule AS
SELECT r.server, r.schema_name,
       CASE WHEN cyberbiz_round_busy(r.round_pid) THEN 'syncing'
            WHEN cyberbiz_sync_every() IS NULL THEN 'not scheduled'
            WHEN t.tables = 0 THEN 'no tables'
            WHEN cyberbiz_round_due(r) THEN 'due'
            ELSE 'waiting' END AS state,
       CASE WHEN cyberbiz_round_busy(r.round_pid) THEN r.round_pid END AS worker_pid,
       r.round_started_at AS last_round_started_at,
       r.round_seconds AS last_round_seconds,
       cyberbiz_round_next(r) AS next_sync_at,
       t.behind, t.tables, t.first_syncs AS tables_in_first_sync
FROM cyberbiz_replicas r
LEFT JOIN LATERAL (
    SELECT count(*) AS tables,
           count(*) FILTER (WHERE s.last_full_sync IS NULL OR s.full_started_at IS NOT NULL) AS first_syncs,
           CASE WHEN bool_and(s.fresh_as_of IS NOT NULL) THEN now() - min(s.fresh_as_of) END AS behind
    FROM cyberbiz_replica_state s WHERE s.server = r.server AND s.parent IS NULL
) t ON true;
COMMENT ON VIEW cyberbiz_sync_schedule IS 'Per replicated server: its scheduled sync rounds (running, due, next), the last round''s duration, how far behind the shop it is';
