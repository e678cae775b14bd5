#!/usr/bin/env python3
"""1 MiB monolithic pushes (POST, then PUT ?digest= with the body) of new blobs every round,
through several configurations started side by side, in alternating rounds, so that a change too
small for scripts/benchmark's three rounds shows against the machine's drift (docs/performance.md, #19). Prints, per
configuration, the median ms per push over the rounds and its ratio to the first configuration,
the client's median POST and PUT times, and where the servers spent a push: the mean of every
duration histogram on /metrics over the pushes (request routes, storage and database operations;
not for internal services behind mutual TLS).

  usage: swift build -c release --product pierone &&
         python3 scripts/measure-push-ab.py .build/release/pierone [--rounds 10] [--pulls [--cold]] \\
             distribution=distribution pierone=pierone split-plain=split-plain split=split \\
             [old@base=split-plain --baseline <an earlier binary>] [name=kind:ENV=value,ENV=value]
  --pulls: also pull each round's blobs once, right after that round's pushes, timed apart (the
  benchmark's 1 MiB pull row pulls blobs of the same round, but after every registry's pushes
  and 64 MiB pulls); --cold: drop the page cache before those pulls (root only).
  kinds: distribution, pierone (all-in-one), split-plain, split (internal TLS). A name containing
  "@base" runs the --baseline binary; ENV=value pairs go to every process of the configuration.
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

SERIES = re.compile(r'^(pierone_\w+_duration_seconds)_(sum|count)\{([^}]*)\} (\S+)$')


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = {}
    for line in text.splitlines():
        match = SERIES.match(line)
        if match:
            found[(match.group(1), match.group(3), match.group(2))] = float(match.group(4))
    return found


def start(work, name, kind, environment):
    """The configuration and the plain-HTTP ports whose /metrics can be read, by process."""
    if kind == "distribution":
        return b.start_distribution(work, name), {}
    if kind == "pierone":
        registry = b.start_pierone(work, name, environment)
        return registry, {"serve": registry.port}
    if kind not in ("split", "split-plain"):
        sys.exit(f"unknown kind {kind}")
    registry = b.start_split(work, name, internal_tls=kind == "split", environment=environment)
    # The internal services answer only mutual TLS when it is on.
    return registry, {"gateway": registry.port} if kind == "split" else registry.ports


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("configurations", nargs="+", help="name=kind[:ENV=value,...]")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pushes", type=int, default=32, help="pushes per configuration and round")
    parser.add_argument("--baseline", help="the binary of names containing @base")
    parser.add_argument("--pulls", action="store_true", help="also pull each round's blobs once, timed apart")
    parser.add_argument("--cold", action="store_true",
                        help="with --pulls: drop the page cache before each configuration's pulls (root only)")
    arguments = parser.parse_args()
    if arguments.cold and not arguments.pulls:
        parser.error("--cold drops the page cache before the pulls: it needs --pulls")
    os.environ["PIERONE_BIN"] = arguments.binary
    if arguments.baseline:
        os.environ["PIERONE_BASELINE_BIN"] = arguments.baseline
    configurations = []
    for argument in arguments.configurations:
        name, _, spec = argument.partition("=")
        kind, _, settings = spec.partition(":")
        configurations.append((name, kind, dict(pair.split("=", 1) for pair in settings.split(",") if pair)))

    work = tempfile.mkdtemp()
    started = []
    rounds = {name: [] for name, _, _ in configurations}
    posts = {name: [] for name, _, _ in configurations}
    puts = {name: [] for name, _, _ in configurations}
    spent = {name: {} for name, _, _ in configurations}
    pulls = {name: [] for name, _, _ in configurations}
    try:
        for name, kind, environment in configurations:
            started.append((name, *start(work, name, kind, environment)))
        for round_ in range(arguments.rounds):
            # New blobs every round: a push of a digest the registry stores already (and a pull of
            # an older file) is another workload (docs/performance.md, seventh pass).
            data = [os.urandom(1 << 20) for _ in range(arguments.pushes)]
            digests = [b.sha256(blob) for blob in data]
            for name, registry, ports in (started if round_ % 2 == 0 else list(reversed(started))):
                os.sync()
                before = {process: scrape(port) for process, port in ports.items()}
                connection = b.connect(registry)
                began = time.perf_counter()
                for blob, digest in zip(data, digests):
                    posted = time.perf_counter()
                    location = b.start_upload(connection, f"bench/ab-{round_}")
                    put = time.perf_counter()
                    connection.request("PUT", b.with_digest(location, digest), body=blob,
                                       headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(blob))})
                    b.check(connection.getresponse(), (201,), "monolithic put")
                    posts[name].append(put - posted)
                    puts[name].append(time.perf_counter() - put)
                rounds[name].append(1000 * (time.perf_counter() - began) / len(data))
                connection.close()
                for process, port in ports.items():
                    after = scrape(port)
                    for (series, labels, kind), value in after.items():
                        if kind == "sum":
                            key = (process, series.replace("pierone_", "").replace("_duration_seconds", ""), labels)
                            spent[name][key] = spent[name].get(key, 0) + value - before[process].get((series, labels, kind), 0)
                if arguments.pulls:
                    if arguments.cold:
                        os.sync()
                        with open("/proc/sys/vm/drop_caches", "w") as caches:
                            caches.write("1\n")
                    connection = b.connect(registry)
                    began = time.perf_counter()
                    for digest in digests:
                        b.pull(connection, f"bench/ab-{round_}", digest)
                    pulls[name].append(1000 * (time.perf_counter() - began) / len(data))
                    connection.close()
    finally:
        for _, registry, _ in started:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    reference = statistics.median(rounds[configurations[0][0]])
    print(f"{arguments.rounds} rounds of {arguments.pushes} pushes, alternating; ratio = {configurations[0][0]} / this")
    for name, _, _ in configurations:
        median = statistics.median(rounds[name])
        print(f"{name:18} {median:6.2f} ms/push ({reference / median:.2f}x)  POST {1000 * statistics.median(posts[name]):.2f} ms, "
              f"PUT {1000 * statistics.median(puts[name]):.2f} ms  rounds: {' '.join(f'{r:.1f}' for r in rounds[name])}")
    if arguments.pulls:
        reference = statistics.median(pulls[configurations[0][0]])
        for name, _, _ in configurations:
            median = statistics.median(pulls[name])
            print(f"{name:18} {median:6.2f} ms/pull ({reference / median:.2f}x)  rounds: {' '.join(f'{r:.1f}' for r in pulls[name])}")
    total = arguments.rounds * arguments.pushes
    for name, _, _ in configurations:
        rows = sorted(((value, key) for key, value in spent[name].items() if value > 0 and "/metrics" not in key[2]), reverse=True)
        for value, (process, series, labels) in rows:
            print(f"  {name:16} {process:9} {1000 * value / total:6.2f} ms/push  {series} {labels}")


if __name__ == "__main__":
    main()
