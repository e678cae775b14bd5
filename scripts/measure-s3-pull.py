#!/usr/bin/env python3
"""64 MiB blob pulls with blobs in S3 (moto), Distribution against pierone (SQLite metadata: a blob
GET makes one metadata lookup; the bytes come from S3), in alternating rounds: wall time, and CPU
seconds per GiB of each server process, moto and this client (docs/performance.md, #19).
  usage: swift build -c release --product pierone &&
         python3 scripts/measure-s3-pull.py .build/release/pierone [--baseline <earlier pierone>] [--rounds 6]
"""
import argparse, os, shutil, statistics, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchmark as b

parser = argparse.ArgumentParser()
parser.add_argument("binary")
parser.add_argument("--baseline")
parser.add_argument("--rounds", type=int, default=6)
parser.add_argument("--pulls", type=int, default=4, help="pulls of the blob per round and registry")
parser.add_argument("--size-mb", type=int, default=64)
options = parser.parse_args()
os.environ["PIERONE_BIN"] = options.binary
if options.baseline:
    os.environ["PIERONE_BASELINE_BIN"] = options.baseline

work = tempfile.mkdtemp()
names = ["distribution-s3", "pierone-s3"] + (["pierone-s3@base"] if options.baseline else [])
registries, moto = [], None
try:
    endpoint, moto = b.start_moto(work, [b.bucket_of(n) for n in names])
    for name in names:
        if name.startswith("distribution"):
            registries.append(b.start_distribution(work, name, s3=endpoint))
        else:
            registries.append(b.start_pierone(work, name, dict(
                STORAGE_S3_BUCKET=b.bucket_of(name), STORAGE_S3_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID="bench",
                AWS_SECRET_ACCESS_KEY="bench-secret", AWS_REGION="us-east-1")))
    blob = os.urandom(options.size_mb << 20)
    digest = b.sha256(blob)
    connections = {}
    for registry in registries:
        connections[registry.name] = b.connect(registry)
        b.push_monolithic(connections[registry.name], "bench/s3pull", blob, digest)
    rates = {n: [] for n in names}
    cpu = {n: {} for n in names}
    for round_ in range(options.rounds):
        order = registries[round_ % len(registries):] + registries[:round_ % len(registries)]
        for registry in order:
            pids = {label: [p.pid] for label, p in registry.processes}
            pids["moto"] = [moto.pid]
            before = {label: b.cpu_seconds(p) for label, p in pids.items()}
            client, started = time.process_time(), time.perf_counter()
            for _ in range(options.pulls):
                assert b.pull(connections[registry.name], "bench/s3pull", digest) == len(blob)
            elapsed = time.perf_counter() - started
            gib = options.pulls * len(blob) / (1 << 30)
            rates[registry.name].append(options.pulls * len(blob) / (1 << 20) / elapsed)
            for label in pids:
                cpu[registry.name].setdefault(label, []).append((b.cpu_seconds(pids[label]) - before[label]) / gib)
            cpu[registry.name].setdefault("client", []).append((time.process_time() - client) / gib)
    reference = statistics.median(rates[names[0]])
    for name in names:
        median = statistics.median(rates[name])
        per_gib = ", ".join(f"{label} {statistics.median(v):.2f}" for label, v in cpu[name].items())
        print(f"{name:17} {median:7.0f} MB/s ({median / reference:.2f}x)  rounds "
              + " ".join(f"{r:.0f}" for r in rates[name]) + f"; CPU s/GiB: {per_gib}")
finally:
    for registry in registries:
        registry.stop()
    if moto:
        moto.kill()
    shutil.rmtree(work, ignore_errors=True)
