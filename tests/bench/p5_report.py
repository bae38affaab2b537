"""p5_report: a benchmark of tests/bench.sh (its arguments come from there)."""
import sys
fdw, fdw2, loc, loc2, tfdw, tloc = map(float, sys.argv[1:])
f, l = min(fdw, fdw2), min(loc, loc2)
print(f"P5 count(*) over 20,000 orders: FDW (HTTP on loopback + decode) {20000/(f/1000):,.0f} rows/s ({f:.0f} ms); "
      f"local jsonb_to_recordset over the same bodies {20000/(l/1000):,.0f} rows/s ({l:.0f} ms); ratio {l/f:.2f}x")
print(f"    typed columns (created_at, total_price, financial_status, customer_name, tags): FDW {20000/(tfdw/1000):,.0f} rows/s; "
      f"local {20000/(tloc/1000):,.0f} rows/s; ratio {tloc/tfdw:.2f}x")
