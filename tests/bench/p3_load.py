"""p3_load: a benchmark of tests/bench.sh (its arguments come from there)."""
import json, subprocess, sys, threading, time, urllib.request
db, url, oid = sys.argv[1], sys.argv[2], sys.argv[3]
def psql(sql):
    out = subprocess.run(["su", "postgres", "-c", f"cd / && psql -X -q -At -d {db}"], input=sql, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return out.stdout.strip()
def log():
    return json.load(urllib.request.urlopen(f"{url}/__sandbox/requests"))
def clear():
    urllib.request.urlopen(urllib.request.Request(f"{url}/__sandbox/requests", method="DELETE"))
def scans(n, tables=("p3.orders",)):
    clear()
    results = []
    def one(t):
        t0 = time.monotonic(); rows = int(psql(f"SELECT count(*) FROM {t}")); results.append((rows, time.monotonic() - t0))
    threads = [threading.Thread(target=one, args=(tables[i % len(tables)],)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.monotonic() - t0
    l = log()
    return sum(r for r, _ in results), wall, len(l), sum(1 for e in l if e["status"] == 429), results
for n in (4, 16):
    rows, wall, reqs, n429, _ = scans(n)
    print(f"P3 {n} concurrent full scans of 1,000 orders on one token: {rows:,} rows in {wall:.1f} s = {rows/wall:.1f} rows/s = {rows/wall/250*100:.1f}% of 250; {reqs} requests, {n429} 429s")
# Lookups while 16 scans run.
latencies = []
def lookups():
    time.sleep(3)
    for _ in range(20):
        t0 = time.monotonic(); psql(f"SELECT count(*) FROM p3.orders WHERE id = {oid}"); latencies.append(time.monotonic() - t0)
        time.sleep(0.3)
th = threading.Thread(target=lookups); th.start()
rows, wall, reqs, n429, _ = scans(16)
th.join()
latencies.sort()
p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95) - 1]
print(f"P3 single-row lookup while 16 scans run (20 tries, each a new session): p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s; scans {rows:,} rows in {wall:.1f} s, {n429} 429s")
rows, wall, reqs, n429, results = scans(2, ("p3.orders", "p3b.orders"))
print(f"P3 two tokens scanning at once: {', '.join(f'{r:,} rows in {s:.1f} s ({r/s:.0f} rows/s)' for r, s in results)}; {n429} 429s")
