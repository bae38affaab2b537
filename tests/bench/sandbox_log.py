"""Small readers for the benchmarks: a sandbox request log (JSON on stdin) or EXPLAIN's JSON.
Usage: sandbox_log.py count | summary | w1 MS | execution-time"""
import json
import sys

data = json.load(sys.stdin)
what = sys.argv[1]
if what == "execution-time":
    print(data[0]["Execution Time"])
elif what == "count":
    print(len(data))
elif what == "summary":
    print(f"    requests: {len(data)}, 429s: {sum(1 for e in data if e['status'] == 429)}")
elif what == "w1":
    ms = float(sys.argv[2])
    puts = [e for e in data if e["method"] == "PUT"]
    n429 = sum(1 for e in data if e["status"] == 429)
    print(f"W1 UPDATE of 20 products at --rps 5: {ms/1000:.2f} s, {len(puts)} PUTs + {len(data)-len(puts)} GETs, {n429} 429s")
else:
    raise SystemExit(f"unknown: {what}")
