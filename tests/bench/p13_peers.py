"""P13: 1,000 peers each send the head and all but one byte of a 2 MB body to the webhook
receiver and hold; meanwhile 20 real signed deliveries are sent. Prints how many peers the
receiver held and refused, the receiver's private memory (RssAnon, sampled every 50 ms: before
and at its peak), and the real deliveries' statuses and latencies.
Usage: p13_peers.py HOST PORT RECEIVER_PID APP_SECRET SHOP_DOMAIN"""
import asyncio
import hashlib
import hmac
import sys
import time

HOST, PORT, PID, SECRET, DOMAIN = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode(), sys.argv[5]
PEERS, BODY = 1000, 2_000_000


def rss_anon_kb():
    for line in open(f"/proc/{PID}/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


async def sample(peak, stop):
    while not stop.is_set():
        peak[0] = max(peak[0], rss_anon_kb())
        await asyncio.sleep(0.05)


async def peer(counts, held):
    try:
        r, w = await asyncio.open_connection(HOST, PORT)
        w.write(f"POST / HTTP/1.1\r\nhost: x\r\nx-cyberbiz-event: orders/paid\r\ncontent-length: {BODY}\r\n\r\n".encode())
        chunk, sent = b" " * 65536, 0
        while sent < BODY - 1:
            n = min(len(chunk), BODY - 1 - sent)
            w.write(chunk[:n])
            await w.drain()
            sent += n
            if r.at_eof() or w.is_closing():
                raise ConnectionError
        # Held only if the receiver has not answered (a refusal answers 503 and closes).
        try:
            line = await asyncio.wait_for(r.readline(), 0.5)
            counts["refused" if line else "closed"] += 1
            w.close()
        except asyncio.TimeoutError:
            counts["held"] += 1
            held.append(w)
    except (ConnectionError, OSError):
        counts["refused"] += 1


async def deliver(i):
    body = f'{{"id": {9_900_000 + i}, "name": "p13", "updated_at": "2026-12-01 10:00:{i % 60:02d}"}}'.encode()
    sig = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    started = time.monotonic()
    r, w = await asyncio.open_connection(HOST, PORT)
    w.write(
        f"POST / HTTP/1.1\r\nhost: x\r\nx-cyberbiz-event: customers/update\r\nx-cyberbiz-domain: {DOMAIN}\r\n"
        f"x-cyberbiz-hmac-sha256: {sig}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body
    )
    await w.drain()
    line = await r.readline()
    w.close()
    return int(line.split()[1]) if line else 0, (time.monotonic() - started) * 1000


async def main():
    before = rss_anon_kb()
    peak, stop = [before], asyncio.Event()
    sampler = asyncio.create_task(sample(peak, stop))
    counts, held = {"held": 0, "refused": 0, "closed": 0}, []
    started = time.monotonic()
    await asyncio.gather(*(peer(counts, held) for _ in range(PEERS)))
    loaded = time.monotonic() - started
    real = [await deliver(i) for i in range(20)]
    stop.set()
    await sampler
    statuses = sorted({s for s, _ in real})
    lat = sorted(ms for _, ms in real)
    print(f"P13 {PEERS} peers each holding {BODY - 1:,} of a {BODY:,}-byte body (sent in {loaded:.1f} s): {counts['held']} held, "
          f"{counts['refused']} refused at once, {counts['closed']} closed")
    print(f"    receiver RssAnon: {before / 1024:.1f} MB before, {peak[0] / 1024:.1f} MB at the peak")
    print(f"    20 real deliveries meanwhile: statuses {statuses}, latency p50 {lat[10]:.1f} ms, max {lat[-1]:.1f} ms")
    for w in held:
        w.close()


asyncio.run(main())
