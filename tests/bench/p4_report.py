"""p4_report: a benchmark of tests/bench.sh (its arguments come from there)."""
import sys
v = {l.split()[0]: l.split()[1:] for l in sys.stdin.read().split("\n") if l.strip()}
b, a, n = int(v["before"][0]), int(v["after"][0]), v["rows"][0]
print(f"P4 scan of 100,000 orders (count {n}): backend peak RSS {b/1024:.1f} MB -> {a/1024:.1f} MB, growth {(a-b)/1024:.1f} MB")
