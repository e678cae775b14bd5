#!/usr/bin/env python3
"""A deploy's pull burst: many clients pull the same new image's small layers at once (every node
of a rollout starts at about the same moment). Per configuration: the blob reads the gateway
sent to the blob service per blob (from the gateway's blob cache counters; without sharing,
each concurrent miss reads the blob again), the gateway's blob cache counters, and the median time of
a burst, with its ratio to the first configuration (docs/performance.md, #19 ninth pass).

  usage: swift build -c release --product pierone &&
         python3 scripts/measure-pull-burst.py .build/release/pierone [--clients 16] [--blobs 8] \\
             [--rounds 5] [distribution=distribution split-plain=split-plain split=split ...] \\
             [old@base=split-plain --baseline <an earlier binary>]
  kinds: distribution, pierone (all-in-one), split-plain, split (internal TLS).
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchmark as b  # noqa: E402

CACHE = re.compile(r'^(pierone_blob_cache_\w+_total)(?:\{[^}]*\})? (\S+)$')


def blob_reads(port):
    """Reads of small blobs the gateway sent to the blob service: its cache's misses, less those
    that waited for another request's read (pierone_blob_cache_shared_total; builds before it
    had no such wait)."""
    counters = cache_counters(port)
    return counters.get("pierone_blob_cache_misses_total", 0) - counters.get("pierone_blob_cache_shared_total", 0)


def cache_counters(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {m.group(1): float(m.group(2)) for m in map(CACHE.match, text.splitlines()) if m}


def start(work, name, kind):
    if kind == "distribution":
        return b.start_distribution(work, name)
    if kind == "pierone":
        return b.start_pierone(work, name, {"BLOB_CACHE_MB": "32"})
    if kind not in ("split", "split-plain"):
        sys.exit(f"unknown kind {kind}")
    return b.start_split(work, name, internal_tls=kind == "split")


def burst(registry, repository, digests, clients):
    """`clients` threads, released together, each pulling every blob in order; the seconds until
    the last one is done."""
    barrier = threading.Barrier(clients + 1)
    failures = []

    def client():
        connection = b.connect(registry)
        try:
            barrier.wait()
            for digest in digests:
                if b.pull(connection, repository, digest) != b.MiB:
                    failures.append(f"short pull of {digest}")
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{registry.name}: {failures[:3]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("configurations", nargs="*", default=["distribution=distribution", "split-plain=split-plain", "split=split"])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--blobs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="the binary of names containing @base")
    arguments = parser.parse_intermixed_args()
    os.environ["PIERONE_BIN"] = os.path.abspath(arguments.binary)
    if arguments.baseline:
        os.environ["PIERONE_BASELINE_BIN"] = os.path.abspath(arguments.baseline)
    work = tempfile.mkdtemp(prefix="pull-burst-")
    registries = []
    try:
        for spec in arguments.configurations:
            name, kind = spec.split("=", 1)
            registries.append((name, kind, start(work, name, kind)))
        times = {name: [] for name, _, _ in registries}
        reads = {name: [] for name, _, _ in registries}
        for round_ in range(arguments.rounds):
            data = [os.urandom(b.MiB) for _ in range(arguments.blobs)]
            digests = [b.sha256(d) for d in data]
            order = registries if round_ % 2 == 0 else list(reversed(registries))
            for name, kind, registry in order:
                repository = f"burst/r{round_}"
                connection = b.connect(registry)
                for blob, digest in zip(data, digests):
                    # A chunked push (PATCH, then PUT without a body), as docker pushes a layer:
                    # the gateway keeps no copy of it, so the burst's first pulls are misses.
                    b.push_streamed(connection, repository, blob, digest)
                connection.close()
                before = None if kind == "distribution" else blob_reads(registry.port)
                times[name].append(burst(registry, repository, digests, arguments.clients))
                if before is not None:
                    reads[name].append((blob_reads(registry.port) - before) / arguments.blobs)
            print(f"round {round_ + 1}/{arguments.rounds} done", file=sys.stderr)
        reference = statistics.median(times[registries[0][0]])
        print(f"{arguments.rounds} rounds: {arguments.clients} clients pull the same {arguments.blobs} new 1 MiB blobs at once;"
              f" ratio = {registries[0][0]} time / this")
        for name, kind, registry in registries:
            median = statistics.median(times[name])
            line = f"{name:<20} {median * 1000:8.1f} ms/burst ({reference / median:.2f}x)"
            line += "  rounds: " + " ".join(f"{t * 1000:.0f}" for t in times[name])
            if reads[name]:
                line += "  blob-service reads per blob: " + " ".join(f"{r:.1f}" for r in reads[name])
                counters = cache_counters(registry.port)
                line += "  cache: " + ", ".join(f"{k.removeprefix('pierone_blob_cache_')}={v:.0f}" for k, v in sorted(counters.items()))
            print(line)
    finally:
        for _, _, registry in registries:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
