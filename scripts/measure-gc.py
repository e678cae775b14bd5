#!/usr/bin/env python3
"""Driver of scripts/measure-gc (which builds the release binary): see that script's header."""

import concurrent.futures
import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, process):
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"pierone exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/v2/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("pierone did not start")


def serve(data, env):
    port = free_port()
    log = open(os.path.join(data, f"serve-{port}.log"), "w")
    environment = dict(os.environ, HTTP_PORT=str(port), STORAGE_DIRECTORY=os.path.join(data, "store"), LOG_LEVEL="warning", **env)
    process = subprocess.Popen([os.environ["PIERONE_BIN"], "serve"], env=environment, stdout=log, stderr=log)
    wait_ready(port, process)
    return process, port


def push_blobs(port, count, size, threads=8, deadline=None):
    """Monolithic pushes (POST, PUT with the body) of `count` distinct blobs; returns how many."""
    counter = iter(range(count))
    lock = threading.Lock()
    done = [0]

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return
            with lock:
                index = next(counter, None)
            if index is None:
                return
            body = (uuid.uuid4().hex * (size // 32 + 1))[:size].encode()
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            connection.request("POST", "/v2/bench/gc/blobs/uploads/")
            response = connection.getresponse()
            response.read()
            location = response.getheader("Location")
            connection.request("PUT", f"{location}?digest={digest}", body=body)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                raise SystemExit(f"push answered {response.status}")
            with lock:
                done[0] += 1

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker) for _ in range(threads)]:
            future.result()
    return done[0]


def metric(port, name):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def push_rate(port, seconds=5.0):
    start = time.monotonic()
    pushed = push_blobs(port, 10**9, 1 << 20, threads=4, deadline=start + seconds)
    return pushed / (time.monotonic() - start)


def pull_rate(port, digest, seconds=5.0, threads=4):
    """GETs of one 1 MiB blob for `seconds`; returns pulls per second."""
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def worker(index):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            connection.request("GET", f"/v2/bench/gc/blobs/{digest}")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"pull answered {response.status}")
            counts[index] += 1

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker, i) for i in range(threads)]:
            future.result()
    return sum(counts) / (time.monotonic() - start)


def kept_blob(port):
    """A 1 MiB blob referenced by a tagged manifest (so the collector keeps it): its digest."""
    body = os.urandom(1 << 20)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    config = b"{}"
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for blob, blob_digest in ((body, digest), (config, config_digest)):
        connection.request("POST", "/v2/bench/gc/blobs/uploads/")
        response = connection.getresponse()
        response.read()
        connection.request("PUT", f"{response.getheader('Location')}?digest={blob_digest}", body=blob)
        response = connection.getresponse()
        response.read()
    manifest = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        f'"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":2}},'
        f'"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{digest}","size":{1 << 20}}}]}}'
    )
    connection.request("PUT", "/v2/bench/gc/manifests/kept", body=manifest,
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    response = connection.getresponse()
    response.read()
    if response.status != 201:
        raise SystemExit(f"manifest answered {response.status}")
    return digest


def both_rates(port, digest):
    """Pushes and pulls at the same time, 5 s: (pushes/s, pulls/s)."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pushing = pool.submit(push_rate, port)
        pulling = pool.submit(pull_rate, port, digest)
        return pushing.result(), pulling.result()


def measure(name, count, env):
    data = tempfile.mkdtemp(prefix=f"pierone-gc-{name}-")
    try:
        # Garbage made under a long grace period: nothing is collected while it is made.
        process, port = serve(data, dict(env, GC_GRACE_PERIOD="24h"))
        start = time.monotonic()
        push_blobs(port, count, 256)
        made = time.monotonic() - start
        digest = kept_blob(port)
        baseline, pulls_baseline = both_rates(port, digest)
        process.terminate()
        process.wait()
        # The same data with no grace period: every upload is garbage now.
        process, port = serve(data, dict(env, GC_GRACE_PERIOD="0"))
        # The collection starts a second after the restart; pushes go on meanwhile, in a thread.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            measuring = pool.submit(both_rates, port, digest)
            while metric(port, "pierone_gc_deleted_blobs_total") < count or metric(port, "pierone_gc_runs_total") < 1:
                time.sleep(0.05)
            during, pulls_during = measuring.result()
        # The collections' own time (the duration histogram's sum), from the first to the last.
        collected = metric(port, "pierone_gc_duration_seconds_sum")
        deleted = metric(port, "pierone_gc_deleted_blobs_total")
        errors = metric(port, "pierone_gc_errors_total")
        process.terminate()
        process.wait()
        print(
            f"{name:<11} {count:>7} blobs made in {made:6.1f} s; collected {deleted:>7.0f} in {collected:6.1f} s = "
            f"{deleted / collected:7.0f} blobs/s ({deleted / collected * 60 / 300:6.0f}x Harbor's ~300/min); errors {errors:.0f}; "
            f"1 MiB pushes/s while collecting {during:5.1f}, without {baseline:5.1f} ({during / baseline:.2f}x); "
            f"1 MiB pulls/s while collecting {pulls_during:6.1f}, without {pulls_baseline:6.1f} ({pulls_during / pulls_baseline:.2f}x)",
            flush=True,
        )
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    filesystem_count, s3_count = int(sys.argv[1]), int(sys.argv[2])
    if filesystem_count > 0:
        measure("filesystem", filesystem_count, {})
    if s3_count == 0:
        return
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        import boto3

        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="bench")
        measure("s3 (moto)", s3_count, {"STORAGE_S3_BUCKET": "bench", "STORAGE_S3_ENDPOINT": endpoint})
        # The limit: moto deleting as many objects for boto3, one request each.
        keys = [f"alone/{i}" for i in range(min(s3_count, 2000))]
        for key in keys:
            s3.put_object(Bucket="bench", Key=key, Body=b"x" * 256)
        start = time.monotonic()
        for key in keys:
            s3.delete_object(Bucket="bench", Key=key)
        elapsed = time.monotonic() - start
        print(f"limit, moto alone: {len(keys) / elapsed:7.0f} single-object deletes/s (boto3, one at a time)")
    finally:
        moto.kill()


if __name__ == "__main__":
    main()
