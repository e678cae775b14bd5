#!/usr/bin/env python3
"""How long the /ui/ page takes to show an artifact's tags in headless Chromium: an artifact with
20,000 tags against one with a single tag, in the same run (release build, SQLite, loopback); and
how long the search endpoints (the listings' `?prefix=`, the tags' `?digest=`) and the search view
take at that size (`--tags 100000` for the issue's 100,000).
  usage: swift build -c release --product pierone && python3 scripts/measure-ui.py [--tags N]
"""
import argparse, hashlib, http.client, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("--tags", type=int, default=20000)
parser.add_argument("--rounds", type=int, default=3)
options = parser.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=root, check=True,
                                     capture_output=True, text=True).stdout.strip(), "pierone")
work = tempfile.mkdtemp(prefix="pierone-ui-")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
serve = subprocess.Popen([binary, "serve"], env=dict(os.environ, HTTP_PORT=str(port), STORAGE_DIRECTORY=work + "/data",
                                                    LOG_LEVEL="error"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(0.1)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def blob(repository, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        c.request("POST", f"/v2/{repository}/blobs/uploads/?digest={digest}", body=data)
        r = c.getresponse(); r.read(); assert r.status == 201, r.status
        return digest

    def image(repository, tags):
        config, layer = b"{}", repository.encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(repository, config), "size": 2},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(repository, layer),
                                           "size": len(layer)}]}).encode()
        for tag in tags:
            c.request("PUT", f"/v2/{repository}/manifests/{tag}", body=manifest,
                      headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            r = c.getresponse(); r.read(); assert r.status == 201, r.status

    started = time.perf_counter()
    image("team/big", [f"t{n}" for n in range(options.tags)])
    image("team/small", ["1.0"])
    print(f"pushed {options.tags} tags in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    def page(artifact, route=None):
        profile = tempfile.mkdtemp(dir=work)
        started = time.perf_counter()
        dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                              f"--user-data-dir={profile}", "--virtual-time-budget=60000", "--dump-dom",
                              f"http://127.0.0.1:{port}/ui/#" + (route or f"/teams/team/{artifact}")],
                             check=True, capture_output=True, text=True, env=dict(os.environ, HOME=profile)).stdout
        elapsed = time.perf_counter() - started
        assert 'data-ready="true"' in dom
        return elapsed, dom.count("<tr data-tag=") + dom.count("data-found=")

    def api(path):
        started = time.perf_counter()
        c.request("GET", path); r = c.getresponse(); body = r.read()
        return time.perf_counter() - started, len(body)

    results = {"big": [], "small": []}
    for _ in range(options.rounds):
        for artifact in ("small", "big"):
            results[artifact].append(page(artifact))
    for artifact, runs in results.items():
        print(f"{artifact:5}  page shown (chromium start to DOM) median {statistics.median(t for t, _ in runs):.2f} s, rows {runs[0][1]}")
    ratio = statistics.median(t for t, _ in results["big"]) / statistics.median(t for t, _ in results["small"])
    print(f"big / small: {ratio:.2f}x")
    first, size = api("/teams/team/artifacts/big/tags?order=newest&limit=100")
    whole, whole_size = api("/teams/team/artifacts/big/tags")
    print(f"API: first page of 100 newest {first * 1000:.1f} ms ({size} bytes); unpaged listing {whole * 1000:.1f} ms ({whole_size} bytes)")
    c.request("HEAD", "/v2/team/big/manifests/t0"); r = c.getresponse(); r.read()
    digest = r.getheader("Docker-Content-Digest")
    last = options.tags - 1
    for label, path in [
        (f"tags by prefix t{last} (1 match)", f"/teams/team/artifacts/big/tags?prefix=t{last}&limit=100"),
        ("tags by prefix t1 (first 100 of many)", "/teams/team/artifacts/big/tags?prefix=t1&limit=100"),
        ("tags by prefix x (none)", "/teams/team/artifacts/big/tags?prefix=x&limit=100"),
        ("tags of one manifest (first 100)", f"/teams/team/artifacts/big/tags?digest={digest}&limit=100"),
        ("teams by prefix te", "/teams?prefix=te&limit=100"),
        ("artifacts by prefix b", "/teams/team/artifacts?prefix=b&limit=100"),
    ]:
        times = sorted(api(path)[0] for _ in range(21))
        print(f"API: {label:40} median {times[10] * 1000:.2f} ms, slowest {times[-1] * 1000:.2f} ms")
    shown = [page("big", route=f"/search/team/big:t{last}") for _ in range(options.rounds)]
    print(f"search view team/big:t{last} (chromium start to DOM) median {statistics.median(t for t, _ in shown):.2f} s, found {shown[0][1]}")
finally:
    serve.kill(); serve.wait()
    shutil.rmtree(work, ignore_errors=True)
