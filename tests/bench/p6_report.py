"""P6: webhook ingest rate against a plain jsonb INSERT of the same payloads.
Usage: p6_report.py TARGET N BYTES INGEST_MS PLAIN_MS DUPLICATE_MS"""
import sys

target, n, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ingest, plain, dup = map(float, sys.argv[4:])
into = "into a replica of orders" if target == "replica" else "into the events table and mirrors (no replica)"
print(f"P6 {n:,} order payloads (~{b:,} bytes) {into}: ingest {n/(ingest/1000):,.0f}/s ({ingest:.0f} ms), "
      f"plain jsonb INSERT {n/(plain/1000):,.0f}/s ({plain:.0f} ms), ratio {plain/ingest:.2f}x; "
      f"duplicate redelivery {n/(dup/1000):,.0f}/s")
