-- cyberbiz_fdw 0.1.0 -> 0.2.0: ALTER EXTENSION cyberbiz_fdw UPDATE runs this. It changes
-- definitions only and keeps every row of the extension's tables (webhook events, mirrors,
-- backfill state). tests/pg_regress/sql/upgrade.sql installs 0.1.0 as released, stores rows,
-- updates, and checks that the rows are still there and that every object of the extension is
-- defined exactly as a fresh 0.2.0 install defines it.
\echo Use "ALTER EXTENSION cyberbiz_fdw UPDATE" to load this file. \quit

-- cyberbiz_taipei casts text to timestamp, which is STABLE (it reads DateStyle and the zone
-- database), so the function is STABLE too, not IMMUTABLE.
ALTER FUNCTION cyberbiz_taipei(text) STABLE;
