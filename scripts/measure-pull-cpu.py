#!/usr/bin/env python3
"""CPU and page faults per warm 1 MiB pull in each process of Distribution, all-in-one pierone and
the two split stacks: where a pull's CPU goes (docs/performance.md, seventh pass). Pushes 64
blobs of 1 MiB into each, then pulls them (after four warm-up pulls) for --rounds rounds, and
prints per registry the ms per pull and, per process, the minor page faults and CPU ms per pull
(/proc/PID/stat).

  usage: swift build -c release --product pierone &&
         python3 scripts/measure-pull-cpu.py .build/release/pierone [--rounds 3]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def stat(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[7]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    os.environ["PIERONE_BIN"] = os.path.abspath(arguments.binary)
    import benchmark as b

    work = tempfile.mkdtemp(prefix="pull-cpu-")
    registries = []
    try:
        registries = [b.start_distribution(work), b.start_pierone(work, "pierone"),
                      b.start_split(work, "split-plain", internal_tls=False), b.start_split(work, "split")]
        blobs = [os.urandom(1 << 20) for _ in range(64)]
        digests = [b.sha256(blob) for blob in blobs]
        for registry in registries:
            connection = b.connect(registry)
            for blob, digest in zip(blobs, digests):
                b.push_monolithic(connection, "bench/cpu", blob, digest)
        for _ in range(arguments.rounds):
            for registry in registries:
                connection = b.connect(registry)
                for digest in digests[:4]:
                    b.pull(connection, "bench/cpu", digest)
                before = {label: stat(process.pid) for label, process in registry.processes}
                started = time.perf_counter()
                for digest in digests:
                    b.pull(connection, "bench/cpu", digest)
                elapsed = (time.perf_counter() - started) / len(digests) * 1000
                after = {label: stat(process.pid) for label, process in registry.processes}
                print(f"{registry.name:12} {elapsed:.2f} ms/pull  " + "  ".join(
                    f"{label}: {(after[label][0] - before[label][0]) / len(digests):.0f} faults, "
                    f"{(after[label][1] - before[label][1]) / len(digests) * 1000:.2f} ms CPU" for label in after), flush=True)
    finally:
        for registry in registries:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
