-- P4: warm up (library, runtime, first request), then the backend's own peak RSS (VmHWM)
-- before and after a scan of the orders.
SELECT count(*) FROM p4.orders WHERE id = 0;
SELECT 'before ' || substring(pg_read_file('/proc/self/status') from 'VmHWM:\s+(\d+)');
SELECT 'rows ' || count(*) || ' ' || sum(total_price)::bigint || ' ' || count(DISTINCT customer_id) FROM p4.orders;
SELECT 'after ' || substring(pg_read_file('/proc/self/status') from 'VmHWM:\s+(\d+)');
