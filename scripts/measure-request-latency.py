#!/usr/bin/env python3
"""Median time of each request of a 1 MiB blob push and pull (POST, PUT with the body, GET with
the lookup not yet cached, GET again, HEAD) through all-in-one, split-plain and split (internal
TLS), 128 blobs each: where split mode's extra time per request goes (docs/performance.md).
  usage: swift build -c release --product pierone && python3 scripts/measure-request-latency.py .build/release/pierone
"""
import sys, os, time, http.client, hashlib, statistics, subprocess, socket, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchmark as b
work = tempfile.mkdtemp()
os.environ["PIERONE_BIN"] = sys.argv[1]
regs = [b.start_pierone(work, "pierone"), b.start_split(work, "split-plain", internal_tls=False), b.start_split(work, "split")]
data = [os.urandom(1 << 20) for _ in range(64)]
for r in regs:
    c = http.client.HTTPConnection("127.0.0.1", r.port)
    posts, puts, gets, hits, heads = [], [], [], [], []
    for rnd in range(2):
        for i, d in enumerate(data):
            dg = b.sha256(d)
            t0 = time.perf_counter()
            loc = b.start_upload(c, f"p/r{rnd}")
            t1 = time.perf_counter()
            c.request("PUT", b.with_digest(loc, dg), body=d, headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(d))})
            b.check(c.getresponse(), (201,), "put")
            t2 = time.perf_counter()
            b.pull(c, f"p/r{rnd}", dg)
            t3 = time.perf_counter()
            b.pull(c, f"p/r{rnd}", dg)
            t4 = time.perf_counter()
            hits.append(t4 - t3)
            c.request("HEAD", f"/v2/p/r{rnd}/blobs/{dg}"); c.getresponse().read()
            heads.append(time.perf_counter() - t4)
            posts.append(t1 - t0); puts.append(t2 - t1); gets.append(t3 - t2)
    print(r.name, "POST %.2f ms  PUT %.2f ms  GET %.2f ms  GET again %.2f ms  HEAD %.2f ms" % tuple(1000 * statistics.median(x) for x in (posts, puts, gets, hits, heads)))
for r in regs: r.stop()
import shutil
shutil.rmtree(work, ignore_errors=True)
