#!/usr/bin/env python3
"""A rollout's pull burst: many clients resolve the same new tag and pull the same new image's
small layers at once (every node of a rollout starts at about the same moment). Per round a new
image (8 layers of 1 MiB pushed in chunks, so the gateway holds no copy, and a manifest under a
new tag); then every client, released together, GETs the manifest by tag and each layer in
order. Per configuration: the median time of a burst with its ratio to the first
configuration, and from the gateway's cache counters the metadata calls per burst for the tag
and the blob service's reads per layer (without sharing, each concurrent miss asks again;
docs/performance.md, #19 ninth pass).

  usage: swift build -c release --product pierone &&
         python3 scripts/measure-pull-burst.py .build/release/pierone [--clients 16] [--blobs 8] \\
             [--rounds 5] [--aborting 16] [distribution=distribution split-plain=split-plain split=split ...] \\
             [old@base=split-plain --baseline <an earlier binary>]
  kinds: distribution, pierone (all-in-one), split-plain, split (internal TLS).
  --aborting N: N more clients, released with the others, hang up on every layer as its answer
  begins; the burst fails if a client gets a short or wrong answer or still waits after 60 s, and
  the gateway's pierone_blob_cache_collecting_bytes is printed after each burst (it must return
  to 0).
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchmark as b  # noqa: E402

CACHE = re.compile(r'^(pierone_(?:blob|manifest)_cache_\w+_total)(?:\{[^}]*\})? (\S+)$')


def blob_reads(port):
    """Reads of small blobs the gateway sent to the blob service: its cache's misses, less those
    that waited for another request's read (pierone_blob_cache_shared_total; builds before it
    had no such wait)."""
    counters = cache_counters(port)
    return counters.get("pierone_blob_cache_misses_total", 0) - counters.get("pierone_blob_cache_shared_total", 0)


def manifest_calls(port):
    """Manifest and blob lookups the gateway sent to the metadata service (misses less shared)."""
    counters = cache_counters(port)
    return counters.get("pierone_manifest_cache_misses_total", 0) - counters.get("pierone_manifest_cache_shared_total", 0)


def gauge(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = re.search(r"^" + name + r"(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("configurations", nargs="*", default=["distribution=distribution", "split-plain=split-plain", "split=split"])
    parser.add_argument("--clients", type=int, default=b.ROLLOUT_CLIENTS)
    parser.add_argument("--aborting", type=int, default=0,
                        help="more clients that request every layer and hang up as its answer begins")
    parser.add_argument("--blobs", type=int, default=b.ROLLOUT_LAYERS)
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
        lookups = {name: [] for name, _, _ in registries}
        collecting = {name: [] for name, _, _ in registries}
        for round_ in range(arguments.rounds):
            data = [os.urandom(b.MiB) for _ in range(arguments.blobs)]
            digests = [b.sha256(d) for d in data]
            order = registries if round_ % 2 == 0 else list(reversed(registries))
            for name, kind, registry in order:
                repository, tag = "burst/app", f"r{round_}"
                b.push_rollout_image(registry, repository, tag, data, digests)
                before = None if kind == "distribution" else (blob_reads(registry.port), manifest_calls(registry.port))
                times[name].append(b.rollout_burst(registry, repository, tag, digests, arguments.clients, arguments.aborting))
                if before is not None:
                    reads[name].append((blob_reads(registry.port) - before[0]) / arguments.blobs)
                    # The tag's lookup and each layer's link (the manifest push dropped the links
                    # the chunked pushes left): 1 + blobs when every miss is shared.
                    lookups[name].append(manifest_calls(registry.port) - before[1])
                    if arguments.aborting:
                        time.sleep(0.5)
                        collecting[name].append(gauge(registry.port, "pierone_blob_cache_collecting_bytes"))
            print(f"round {round_ + 1}/{arguments.rounds} done", file=sys.stderr)
        reference = statistics.median(times[registries[0][0]])
        print(f"{arguments.rounds} rounds: {arguments.clients} clients resolve the same new tag and pull its {arguments.blobs}"
              f" new 1 MiB layers at once; ratio = {registries[0][0]} time / this")
        for name, kind, registry in registries:
            median = statistics.median(times[name])
            line = f"{name:<20} {median * 1000:8.1f} ms/burst ({reference / median:.2f}x)"
            line += "  rounds: " + " ".join(f"{t * 1000:.0f}" for t in times[name])
            if reads[name]:
                line += "\n    metadata calls per burst: " + " ".join(f"{r:.0f}" for r in lookups[name])
                line += "; blob-service reads per layer: " + " ".join(f"{r:.1f}" for r in reads[name])
                if collecting[name]:
                    line += "; bytes collecting after each burst: " + " ".join(f"{c:.0f}" for c in collecting[name])
                counters = cache_counters(registry.port)
                line += "\n    cache: " + ", ".join(f"{k.removeprefix('pierone_blob_cache_')}={v:.0f}" for k, v in sorted(counters.items()))
            print(line)
    finally:
        for _, _, registry in registries:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
