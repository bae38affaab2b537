"""p8_report: a benchmark of tests/bench.sh (its arguments come from there)."""
import sys
n, s, req, items = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"P8 first sync of {n:,} orders ({items:,} line items) at --rps 5: {s:.1f} s, {n/s:.1f} orders/s = {n/s/250*100:.1f}% of 250 rows/s; {req} requests (pages alone: {-(-n//50)})")
