#!/usr/bin/env python3
"""Wall time and CPU time (every server process, and this client) per 1 MiB blob push and pull:
128 sequential monolithic pushes (POST, PUT ?digest= with the body), then 128 pulls, through
each configuration named, Distribution included when named (docs/performance.md, #19).
  usage: swift build -c release --product pierone &&
         python3 scripts/measure-push-cpu.py .build/release/pierone distribution,pierone,split,split-plain
"""
import sys, os, shutil, time, http.client, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchmark as b

work = tempfile.mkdtemp()
os.environ["PIERONE_BIN"] = sys.argv[1]
starters = {
    "distribution": lambda: b.start_distribution(work),
    "pierone": lambda: b.start_pierone(work, "pierone"),
    "split": lambda: b.start_split(work, "split", internal_tls=True),
    "split-plain": lambda: b.start_split(work, "split-plain", internal_tls=False),
}
data = [os.urandom(1 << 20) for _ in range(128)]
digests = [b.sha256(d) for d in data]
registries = []
try:
    for name in (sys.argv[2] if len(sys.argv) > 2 else "pierone,split,split-plain").split(","):
        registries.append(starters[name]())
    for registry in registries:
        connection = http.client.HTTPConnection("127.0.0.1", registry.port)
        for phase in ("push", "pull"):
            os.sync()
            before = {name: b.cpu_seconds([p.pid]) for name, p in registry.processes}
            client, started = time.process_time(), time.perf_counter()
            if phase == "push":
                for blob, digest in zip(data, digests):
                    b.push_monolithic(connection, "bench/cpu", blob, digest)
            else:
                for digest in digests:
                    b.pull(connection, "bench/cpu", digest)
            elapsed = time.perf_counter() - started
            after = {name: b.cpu_seconds([p.pid]) for name, p in registry.processes}
            n = len(data)
            cpu = ", ".join(f"{name} {1000 * (after[name] - before[name]) / n:.2f}" for name in before)
            print(f"{registry.name:13} {phase}: {1000 * elapsed / n:.2f} ms per blob; CPU ms per blob: {cpu}, "
                  f"client {1000 * (time.process_time() - client) / n:.2f}")
finally:
    for registry in registries:
        registry.stop()
    shutil.rmtree(work, ignore_errors=True)
