-- The scheduler's rounds, one shop (server) per sync worker at a time (src/fdw/scheduler.rs
-- starts the workers, src/fdw/rounds.rs is what each runs). A round of a server is due when
-- no sync worker runs one and either its next scheduled round has come (every table's
-- incremental step, then first-sync windows, then due verifications) or one of its tables has
-- first-sync windows left (a round of windows only). Scheduled rounds are claimed before rounds
-- of windows only, the longest due first; rounds of windows only go to the server served least
-- recently. So a first sync of one shop never holds another shop's incremental syncs. The claim
-- is a row of cyberbiz_replicas (round_pid, round_started_at, round_seconds,
-- round_claimed_at), shown by cyberbiz_sync_schedule.

-- cyberbiz.sync_interval as an interval; NULL when it is 0 (off) or unknown (not preloaded).
CREATE FUNCTION cyberbiz_sync_every() RETURNS interval
LANGUAGE sql STABLE AS $fn$
    SELECT CASE WHEN coalesce(current_setting('cyberbiz.sync_interval', true), '0') NOT IN ('', '0')
                THEN current_setting('cyberbiz.sync_interval', true)::interval END
$fn$;

-- The pids of the running sync workers (as this transaction first saw the backends;
-- pg_stat_clear_snapshot() for a fresh look).
CREATE FUNCTION cyberbiz_sync_workers() RETURNS SETOF integer
LANGUAGE sql STABLE ROWS 10 AS $fn$
    SELECT a.pid FROM pg_stat_get_activity(NULL) a WHERE a.backend_type = 'cyberbiz_fdw sync worker'
$fn$;

-- Every parent table of every replica, with what a round needs to know of it: `windows`, a first
-- sync by updated_at that has not ended (or not begun); `held`, a table with windows whose
-- step failed since its server's last scheduled round began (only the next scheduled round
-- tries it again, so a failing table is tried once per interval, not in a loop).
CREATE FUNCTION cyberbiz_round_table_states(OUT server name, OUT table_name text, OUT windows boolean, OUT held boolean) RETURNS SETOF record
LANGUAGE sql STABLE ROWS 100 AS $fn$
    SELECT s.server, s.table_name, w.windows, coalesce(w.windows AND s.last_error_at >= r.round_started_at, false)
    FROM cyberbiz_replica_state s
    JOIN cyberbiz_replicas r ON r.server = s.server
    CROSS JOIN LATERAL (SELECT s.incremental AND (s.full_started_at IS NOT NULL OR s.last_full_sync IS NULL) AS windows) w
    WHERE s.parent IS NULL
$fn$;

-- The parent tables of `server` a round syncs, in its order: those past their first sync (one
-- step each) before those with first-sync windows left.
CREATE FUNCTION cyberbiz_round_tables(server name, OUT table_name text, OUT windows boolean, OUT held boolean) RETURNS SETOF record
LANGUAGE sql STABLE ROWS 25 AS $fn$
    SELECT t.table_name, t.windows, t.held FROM cyberbiz_round_table_states() t
    WHERE t.server = cyberbiz_round_tables.server
    ORDER BY 2, 1
$fn$;

-- Each server's rounds, in one query (the claim runs it often: no function per row): when its
-- next scheduled round is due (NULL: now; else the first multiple of cyberbiz.sync_interval,
-- counted from 2000-01-01 UTC, after its last one began: as with cron, every shop's round
-- starts at the same moments, so a change made in many shops is in all their replicas about
-- as soon as in one's, and a changed interval applies at once), whether a table has
-- first-sync windows to run now (not `held`), whether a sync worker runs its round, and so
-- whether a round may start now (see the top of this file).
-- SECURITY DEFINER (schedule fields, nothing else), so that a role granted only the views
-- cyberbiz_sync_schedule and cyberbiz_replica_status reads them, and sees a running worker as
-- running (Postgres shows another role's backend type only to pg_read_all_stats).
CREATE FUNCTION cyberbiz_rounds(OUT server name, OUT next_at timestamptz, OUT windows boolean, OUT busy boolean, OUT due boolean)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100 AS $fn$
    WITH workers AS MATERIALIZED (SELECT w AS pid FROM cyberbiz_sync_workers() w),
         every AS MATERIALIZED (SELECT cyberbiz_sync_every() AS every),
         tables AS MATERIALIZED (SELECT t.server, count(*) AS tables, bool_or(t.windows AND NOT t.held) AS windows
                                 FROM cyberbiz_round_table_states() t GROUP BY t.server)
    SELECT r.server, n.next_at, coalesce(t.windows, false), b.busy,
           t.tables > 0 AND NOT b.busy AND (coalesce(n.next_at <= clock_timestamp(), true) OR t.windows)
    FROM cyberbiz_replicas r
    CROSS JOIN every e
    LEFT JOIN tables t ON t.server = r.server
    CROSS JOIN LATERAL (SELECT date_bin(e.every, r.round_started_at, timestamptz '2000-01-01 00:00:00+00') + e.every AS next_at) n
    CROSS JOIN LATERAL (SELECT r.round_pid IS NOT NULL AND r.round_pid IN (SELECT w.pid FROM workers w) AS busy) b
$fn$;

-- How many servers have a round due that no sync worker has claimed, and how many sync workers
-- run: the scheduler starts workers for the rounds waiting, within cyberbiz.sync_workers running
-- (counted here, so the workers of a scheduler that was restarted count too).
CREATE FUNCTION cyberbiz_rounds_waiting(OUT waiting bigint, OUT running bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT (SELECT count(*) FROM cyberbiz_rounds() c WHERE c.due), (SELECT count(*) FROM cyberbiz_sync_workers())
$fn$;

-- Claims for the calling sync worker a round: scheduled rounds whose time has come first (the
-- longest due first; such a round begins now), then rounds of first-sync windows only (the
-- server served least recently first). None: `server` is NULL and `wait_seconds` says when the
-- next scheduled round comes (NULL: none is scheduled); `retire` when more than `workers`
-- (cyberbiz.sync_workers) run and the caller is the newest (highest pid), so that a lowered
-- cap takes effect. Workers claiming at once skip each other's rows; the row locked is checked
-- again as it is now (the backends included: a worker that claimed it since this transaction
-- began is seen). A claim the caller's pid still holds is stale (a worker whose round did not
-- end, or one that ended without ending it and whose pid this worker now has: a worker claims
-- only while it holds no round), and is dropped first.
CREATE FUNCTION cyberbiz_round_claim(workers integer, OUT server name, OUT scheduled boolean, OUT started timestamptz,
    OUT wait_seconds double precision, OUT retire boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    r cyberbiz_replicas;
    is_due boolean;
    due_at timestamptz;
BEGIN
    UPDATE cyberbiz_replicas x SET round_pid = NULL WHERE x.round_pid = pg_backend_pid();
    SELECT count(*) > workers AND max(w) = pg_backend_pid() INTO retire FROM cyberbiz_sync_workers() w;
    IF retire THEN
        RETURN;
    END IF;
    SELECT x.* INTO r FROM cyberbiz_replicas x JOIN cyberbiz_rounds() d ON d.server = x.server WHERE d.due
    ORDER BY coalesce(d.next_at > clock_timestamp(), false), CASE WHEN coalesce(d.next_at <= clock_timestamp(), true) THEN d.next_at END NULLS FIRST,
             x.round_claimed_at NULLS FIRST, x.server
    LIMIT 1 FOR NO KEY UPDATE OF x SKIP LOCKED;
    IF r.server IS NOT NULL THEN
        PERFORM pg_stat_clear_snapshot();
        SELECT d.due, d.next_at INTO is_due, due_at FROM cyberbiz_rounds() d WHERE d.server = r.server;
    END IF;
    IF NOT coalesce(is_due, false) THEN
        SELECT extract(epoch FROM min(d.next_at) - clock_timestamp())::double precision INTO wait_seconds
        FROM cyberbiz_rounds() d WHERE NOT d.busy AND d.next_at > clock_timestamp();
        RETURN;
    END IF;
    server := r.server;
    started := clock_timestamp();
    scheduled := coalesce(due_at <= started, true);
    UPDATE cyberbiz_replicas x SET round_pid = pg_backend_pid(), round_claimed_at = started,
        round_started_at = CASE WHEN scheduled THEN started ELSE x.round_started_at END
    WHERE x.server = r.server;
END
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
       CASE WHEN c.busy THEN 'syncing'
            WHEN cyberbiz_sync_every() IS NULL THEN 'not scheduled'
            WHEN t.tables = 0 THEN 'no tables'
            WHEN c.due THEN 'due'
            ELSE 'waiting' END AS state,
       CASE WHEN c.busy THEN r.round_pid END AS worker_pid,
       r.round_started_at AS last_round_started_at,
       r.round_seconds AS last_round_seconds,
       c.next_at AS next_sync_at,
       t.behind, t.tables, t.first_syncs AS tables_in_first_sync
FROM cyberbiz_replicas r
JOIN cyberbiz_rounds() c ON c.server = r.server
LEFT JOIN LATERAL (
    SELECT count(*) AS tables,
           count(*) FILTER (WHERE s.last_full_sync IS NULL OR s.full_started_at IS NOT NULL) AS first_syncs,
           CASE WHEN bool_and(s.fresh_as_of IS NOT NULL) THEN now() - min(s.fresh_as_of) END AS behind
    FROM cyberbiz_replica_state s WHERE s.server = r.server AND s.parent IS NULL
) t ON true;
COMMENT ON VIEW cyberbiz_sync_schedule IS 'Per replicated server: its scheduled sync rounds (running, due, next), the last round''s duration, how far behind the shop it is';

-- Per replica table: rows, last full and incremental sync, last webhook applied, how far
-- behind the shop it may be, the last error, and the last cyberbiz_verify (sql/verify.sql):
-- when, below which updated_at, the rows it counted in the API and in the replica, the rows
-- it repaired, and what it found; the server's next scheduled sync and how long its last
-- scheduled round took. (OR REPLACE: the same text is the upgrade's, which adds columns.)
CREATE OR REPLACE VIEW cyberbiz_replica_status AS
SELECT s.server, r.schema_name, s.table_name, n.live AS rows, n.deleted AS deleted_rows,
       coalesce(p.last_full_sync, s.last_full_sync) AS last_full_sync,
       coalesce(p.last_incremental_sync, s.last_incremental_sync) AS last_incremental_sync,
       s.last_webhook_at,
       CASE WHEN coalesce(p.full_started_at, s.full_started_at) IS NOT NULL THEN 'first sync in progress'
            WHEN coalesce(p.last_full_sync, s.last_full_sync) IS NULL THEN 'never synced'
            ELSE 'synced' END AS state,
       now() - coalesce(p.fresh_as_of, s.fresh_as_of) AS lag,
       coalesce(s.last_error, p.last_error) AS last_error,
       greatest(s.last_error_at, p.last_error_at) AS last_error_at,
       s.verified_at, s.verified_through, s.api_rows, s.replica_rows, s.repaired, s.verify_result,
       c.next_at AS next_sync_at, r.round_seconds AS last_round_seconds
FROM cyberbiz_replica_state s
JOIN cyberbiz_replicas r ON r.server = s.server
LEFT JOIN cyberbiz_rounds() c ON c.server = s.server
LEFT JOIN cyberbiz_replica_state p ON p.server = s.server AND p.table_name = s.parent
LEFT JOIN LATERAL cyberbiz_replica_rows(r.schema_name, s.table_name) n ON true;
COMMENT ON VIEW cyberbiz_replica_status IS 'Per replica table: rows, syncs, webhooks, lag behind the shop, last error, last verification, next scheduled sync';
