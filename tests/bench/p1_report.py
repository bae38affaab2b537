"""p1_report: a benchmark of tests/bench.sh (its arguments come from there)."""
import sys
ms = float(sys.argv[1]); rate = 2500 / (ms / 1000)
print(f"P1 full scan of 2,500 orders at --rps 5 --latency-ms 300: {ms/1000:.2f} s, {rate:.1f} rows/s = {rate/250*100:.1f}% of the 250 rows/s bound")
