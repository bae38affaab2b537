"""P12/R: of the deliveries the sender saw acknowledged, how many the events table holds, how
many it holds twice, and how many forgeries it stored. Usage: p12_check.py SERVER FIRST_ID ACKED_FILE"""
import subprocess
import sys

server, first, acked_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
acked = [int(line) for line in open(acked_file) if line.strip()]


def q(sql):
    cmd = ["su", "postgres", "-c", f'cd / && psql -X -At -d cyberbiz_bench -c "{sql}"']
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()


where = f"server = '{server}' AND resource_id BETWEEN {first} AND {first + 30000}"
stored = set(int(x) for x in q(f"SELECT resource_id FROM cyberbiz_webhook_events WHERE {where}"))
dups = q(f"SELECT count(*) - count(DISTINCT resource_id) FROM cyberbiz_webhook_events WHERE {where}")[0]
forged = q(f"SELECT count(*) FROM cyberbiz_webhook_events WHERE server = '{server}' AND resource_id > {first + 22000} AND resource_id <= {first + 30000}")[0]
print(f"    acknowledged: {len(acked)}, stored: {len(stored)}, acknowledged but missing: {len(set(acked) - stored)}, "
      f"stored twice: {dups}, forgeries stored: {forged}")
