#!/usr/bin/env python3
"""Side-by-side registry benchmark; run through scripts/benchmark (which installs and builds).

Registries, all on loopback with filesystem blob storage in temporary directories:
  distribution   Debian's docker-registry (CNCF Distribution 2.8), the reference
  pierone        pierone serve, SQLite metadata
  pierone-pg     pierone serve, PostgreSQL metadata (a throwaway cluster started here)
  split          pierone metadata + blob + gateway, internal mutual TLS, SQLite metadata
  split-plain    the same without internal TLS (development setting), to show what TLS costs
  split-pg       split with internal TLS on PostgreSQL: the production configuration
  relay          pierone serve behind scripts/splice-relay.py: the cheapest extra hop, a limit
  distribution-s3  Distribution with blobs in S3 (moto)                           } production
  pierone-pg-s3    pierone serve on PostgreSQL with blobs in S3 (the same moto)   } against production
  distribution-tls Distribution serving HTTPS itself (http.tls, a scripts/dev-certs certificate) } TLS
  pierone-tls      pierone serve with HTTP_TLS_CERT/KEY, the same certificate                 } against TLS
The TLS rows run the same workloads over HTTPS (HTTP/1.1 from Python's client, as ratios against
distribution-tls), plus a push and a pull through curl over HTTP/2, as Go clients speak to both.

Each workload runs against each registry in turn (the order rotates every round), for --rounds
rounds; the table shows the median and the ratio against Distribution measured in the same run.
After the table, the MiB each registry's processes read from the disk during the pull rows, round
by round (/proc/PID/io read_bytes): a pull whose blobs left the page cache measures the disk, and
the machines here page out file pages idle for about a minute (docs/performance.md, "Seventh
pass"). Run as root, a "cold" 1 MiB pull row pulls the same blobs again after dropping the page
cache (sync, /proc/sys/vm/drop_caches), as a registry with more blobs than memory serves them.
--disk-reads prints every round's result beside its disk reads, for every row.
"""

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- registries -------------------------------------------------------------------------------


class Registry:
    def __init__(self, name, port, processes, tls=None):
        self.name = name
        self.port = port
        self.processes = processes  # [(label, Popen)]
        self.tls = tls  # the CA file when the registry serves HTTPS

    @property
    def base(self):
        return f"https://localhost:{self.port}" if self.tls else f"http://127.0.0.1:{self.port}"

    def reset_peak(self):
        for _, process in self.processes:
            with open(f"/proc/{process.pid}/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS

    def peaks(self, field="VmHWM"):
        result = {}
        for label, process in self.processes:
            with open(f"/proc/{process.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        result[label] = int(line.split()[1]) // 1024
        return result

    def stop(self):
        for _, process in self.processes:
            process.kill()
            process.wait()


def make_connection(port, tls=None, timeout=600):
    if tls:
        return http.client.HTTPSConnection("localhost", port, timeout=timeout, context=ssl.create_default_context(cafile=tls))
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def certificates(work):
    """scripts/dev-certs once per run: the CA, and certificates naming localhost."""
    directory = os.path.join(work, "certs")
    if not os.path.exists(directory):
        subprocess.run([os.path.join(ROOT, "scripts/dev-certs"), directory], check=True, stdout=subprocess.DEVNULL)
    return directory


def wait_ready(port, what, processes, tls=None):
    for _ in range(300):
        for label, process in processes:
            if process.poll() is not None:
                sys.exit(f"{what}: {label} exited with {process.returncode}")
        try:
            connection = make_connection(port, tls, timeout=2)
            connection.request("GET", "/v2/")
            if connection.getresponse().status in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not answer on port {port}")


def start_distribution(work, name="distribution", s3=None, tls=False):
    port = free_port()
    certs = certificates(work) if tls else None
    listener = f"""
  tls:
    certificate: {certs}/gateway.crt
    key: {certs}/gateway.key""" if tls else ""
    config = os.path.join(work, f"{name}.yml")
    if s3:
        storage = f"""  s3:
    accesskey: bench
    secretkey: bench-secret
    region: us-east-1
    regionendpoint: {s3}
    bucket: {name}
    secure: false
    v4auth: true
  redirect:
    disable: true"""
    else:
        storage = f"""  filesystem:
    rootdirectory: {work}/{name}"""
    with open(config, "w") as f:
        f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
{storage}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}{listener}
""")
    log = open(os.path.join(work, f"{name}.log"), "w")
    # The AWS SDK in Distribution refuses a custom CA bundle with its own transport; moto is plain HTTP.
    environment = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    processes = [("registry", subprocess.Popen(["docker-registry", "serve", config], stdout=log, stderr=log, env=environment))]
    ca = f"{certs}/ca.crt" if tls else None
    wait_ready(port, name, processes, ca)
    return Registry(name, port, processes, ca)


def bucket_of(name):
    return name.replace("@", "-")


def start_moto(work, buckets):
    """moto's S3 server; returns its URL. Both registries sign their requests, but moto's checks are
    off here (its IAM setup is the tests' business; checking costs moto, not the registries)."""
    port = free_port()
    log = open(os.path.join(work, "moto.log"), "w")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    for bucket in buckets:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("PUT", f"/{bucket}")
        check(connection.getresponse(), (200,), "create bucket")
    return endpoint, process


def pierone(arguments, environment, work, label):
    log = open(os.path.join(work, f"{label}.log"), "w")
    env = dict(os.environ, **{"LOG_LEVEL": "error", **environment})
    # "<name>@base" runs the --baseline binary: an earlier build, side by side in the same run.
    binary = os.environ["PIERONE_BASELINE_BIN"] if "@base" in label else os.environ["PIERONE_BIN"]
    return subprocess.Popen([binary] + arguments, stdout=log, stderr=log, env=env)


def start_pierone(work, name, environment=None, tls=False):
    port = free_port()
    environment = dict(environment or {})
    certs = certificates(work) if tls else None
    if tls:
        environment.update(HTTP_TLS_CERT=f"{certs}/gateway.crt", HTTP_TLS_KEY=f"{certs}/gateway.key")
    processes = [("serve", pierone(["serve"], dict(
        HTTP_PORT=str(port), STORAGE_DIRECTORY=os.path.join(work, name), **environment), work, name))]
    ca = f"{certs}/ca.crt" if tls else None
    wait_ready(port, name, processes, ca)
    return Registry(name, port, processes, ca)


def start_relay(work, name="relay"):
    """An all-in-one registry behind scripts/splice-relay.py: one more process and one more
    loopback hop at the lowest cost possible (splice, no copy through user space). Whatever a
    split deployment does, its gateway adds at least this hop to every byte."""
    port, target = free_port(), free_port()
    processes = [("serve", pierone(["serve"], dict(HTTP_PORT=str(target), STORAGE_DIRECTORY=os.path.join(work, name)),
                                   work, name))]
    wait_ready(target, name, processes)
    processes.append(("relay", subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts/splice-relay.py"),
                                                 str(port), str(target)])))
    wait_ready(port, name, processes)
    return Registry(name, port, processes)


def start_postgres(work):
    """A throwaway PostgreSQL cluster as a child process; returns (DATABASE_URL, Popen)."""
    binaries = sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin"))[-1]
    directory = os.path.join(work, "pg")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    os.makedirs(directory)
    if os.getuid() == 0:
        shutil.chown(directory, "postgres")
        os.chmod(work, 0o755)
    subprocess.run(as_postgres + [f"{binaries}/initdb", "-D", directory, "-U", "postgres", "--auth=trust"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    log = open(os.path.join(work, "postgres.log"), "w")
    process = subprocess.Popen(as_postgres + [f"{binaries}/postgres", "-D", directory, "-p", str(port), "-k", directory,
                                              "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"], stdout=log, stderr=log)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(0.5)
                return f"postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable", process
        time.sleep(0.1)
    sys.exit("postgres did not start")


def start_split(work, name="split", internal_tls=True, database_url=None, environment=None):
    """metadata + blob + gateway; `environment` goes to all three. The Registry's `ports` name each
    process's port (scripts/measure-push-ab.py reads their /metrics)."""
    certs = certificates(work) if internal_tls else None

    def tls(service):
        if not internal_tls:
            return dict(environment or {}, HTTP_BIND_ADDRESS="127.0.0.1")
        return dict(environment or {}, INTERNAL_TLS_CA=f"{certs}/ca.crt", INTERNAL_TLS_CERT=f"{certs}/{service}.crt",
                    INTERNAL_TLS_KEY=f"{certs}/{service}.key", HTTP_BIND_ADDRESS="127.0.0.1")

    scheme = "https://localhost" if internal_tls else "http://127.0.0.1"
    metadata_port, blob_port, gateway_port = free_port(), free_port(), free_port()
    storage = os.path.join(work, name)
    database = dict(DATABASE_URL=database_url) if database_url else {}
    processes = [
        ("metadata", pierone(["metadata"], dict(tls("metadata"), METADATA_PORT=str(metadata_port), STORAGE_DIRECTORY=storage, **database),
                             work, f"{name}-metadata")),
        ("blob", pierone(["blob"], dict(tls("blob"), BLOB_PORT=str(blob_port), STORAGE_DIRECTORY=storage), work, f"{name}-blob")),
        ("gateway", pierone(["gateway"], dict(tls("gateway"), HTTP_PORT=str(gateway_port),
                                              METADATA_URL=f"{scheme}:{metadata_port}",
                                              BLOB_URL=f"{scheme}:{blob_port}"), work, f"{name}-gateway")),
    ]
    wait_ready(gateway_port, name, processes)
    registry = Registry(name, gateway_port, processes)
    registry.ports = {"metadata": metadata_port, "blob": blob_port, "gateway": gateway_port}
    return registry


# --- the protocol, as a client ------------------------------------------------------------------


def path_of(location):
    parts = urllib.parse.urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def with_digest(location, digest):
    return location + ("&" if "?" in location else "?") + "digest=" + digest


def check(response, expected, what):
    body = response.read()
    if response.status not in expected:
        raise RuntimeError(f"{what}: {response.status} {body[:300]!r}")
    return body


def start_upload(connection, repository):
    connection.request("POST", f"/v2/{repository}/blobs/uploads/", headers={"Content-Length": "0"})
    response = connection.getresponse()
    check(response, (202,), "start upload")
    return path_of(response.getheader("Location"))


def push_streamed(connection, repository, data, digest, chunk=MiB):
    """POST, one PATCH with chunked transfer encoding (as docker/podman/skopeo), PUT ?digest."""
    location = start_upload(connection, repository)
    view = memoryview(data)
    body = (view[i:i + chunk] for i in range(0, len(data), chunk))
    connection.request("PATCH", location, body=body, encode_chunked=True,
                       headers={"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    check(response, (202,), "patch")
    location = path_of(response.getheader("Location"))
    connection.request("PUT", with_digest(location, digest), headers={"Content-Length": "0"})
    check(connection.getresponse(), (201,), "commit")


def push_monolithic(connection, repository, data, digest):
    location = start_upload(connection, repository)
    connection.request("PUT", with_digest(location, digest), body=data,
                       headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    check(connection.getresponse(), (201,), "monolithic put")


def pull(connection, repository, digest):
    connection.request("GET", f"/v2/{repository}/blobs/{digest}")
    response = connection.getresponse()
    if response.status in (307, 302):
        raise RuntimeError("redirects are not used in this benchmark")
    if response.status != 200:
        raise RuntimeError(f"pull: {response.status}")
    size = 0
    while True:
        chunk = response.read(MiB)
        if not chunk:
            return size
        size += len(chunk)


def push_image(connection, repository, tag, layer_size, seed):
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"seed": seed}}}).encode()
    layer = hashlib.sha256(seed.encode()).digest() * (layer_size // 32)
    config_digest, layer_digest = sha256(config), sha256(layer)
    push_monolithic(connection, repository, config, config_digest)
    push_monolithic(connection, repository, layer, layer_digest)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
    }).encode()
    connection.request("PUT", f"/v2/{repository}/manifests/{tag}", body=manifest,
                       headers={"Content-Type": OCI_MANIFEST, "Content-Length": str(len(manifest))})
    check(connection.getresponse(), (201,), "manifest put")
    return sha256(manifest)


# --- workloads ----------------------------------------------------------------------------------


class Data:
    def __init__(self, quick):
        self.large_count = 2 if quick else 4
        self.small_count = 32 if quick else 64
        self.fresh()
        self.memory_size = 256 * MiB if quick else 1024 * MiB
        self.memory_block = os.urandom(MiB)
        hasher = hashlib.sha256()
        for _ in range(self.memory_size // MiB):
            hasher.update(self.memory_block)
        self.memory_digest = "sha256:" + hasher.hexdigest()

    def fresh(self):
        """New random blobs, for the next round: a round pushes blobs no registry has stored yet and
        pulls the ones it pushed. (With the same blobs every round, rounds after the first were
        pushes of stored digests and pulls of the first round's files, minutes old and partly out of
        the page cache: docs/performance.md, seventh pass.)"""
        self.large = [os.urandom(64 * MiB) for _ in range(self.large_count)]
        self.large_digests = [sha256(d) for d in self.large]
        self.small = [os.urandom(MiB) for _ in range(self.small_count)]
        self.small_digests = [sha256(d) for d in self.small]
        self.rollout = [os.urandom(MiB) for _ in range(ROLLOUT_LAYERS)]
        self.rollout_digests = [sha256(d) for d in self.rollout]
        if getattr(self, "files", None):
            shutil.rmtree(os.path.dirname(self.files[0]), ignore_errors=True)
        self.files = None


def _large_file(self, index):
    """The large blob as a file, for curl."""
    if self.files is None:
        directory = tempfile.mkdtemp(prefix="blobs-", dir=self.work)
        self.files = []
        for i, blob in enumerate(self.large):
            path = os.path.join(directory, f"large-{i}")
            with open(path, "wb") as f:
                f.write(blob)
            self.files.append(path)
    return self.files[index]


Data.large_file = _large_file


def connect(registry):
    return make_connection(registry.port, registry.tls)


# The 64 MiB blobs are pushed this many times per round (into as many repositories): 512 MiB per
# round, long enough to average out single slow fsyncs on a shared disk.
PUSH_REPEATS = 2


def blob_push_64(registry, data, round_):
    connection = connect(registry)
    started = time.perf_counter()
    for repeat in range(PUSH_REPEATS):
        for blob, digest in zip(data.large, data.large_digests):
            push_streamed(connection, f"bench/large-{round_}" if repeat == 0 else f"bench/large-{round_}-{repeat}",
                          blob, digest)
    return data.large_count * PUSH_REPEATS * 64 / (time.perf_counter() - started)


def blob_push_1(registry, data, round_):
    connection = connect(registry)
    started = time.perf_counter()
    for blob, digest in zip(data.small, data.small_digests):
        push_monolithic(connection, f"bench/small-{round_}", blob, digest)
    return data.small_count / (time.perf_counter() - started)


# Each 64 MiB blob is pulled this many times per round: a round then lasts long enough (1 GiB)
# for the shared machine's noise to average out.
PULL_REPEATS = 4
# CPU seconds per GiB pulled, per registry: its server processes, and this client.
PULL_CPU = {}


def disk_reads(pids):
    """Reads that missed the page cache so far: bytes the registry's processes had fetched from
    the disk (/proc/PID/io read_bytes, summed) and the whole system's page-ins (pgpgin), in MiB."""
    own = 0
    for pid in pids:
        with open(f"/proc/{pid}/io") as f:
            own += next(int(line.split()[1]) for line in f if line.startswith("read_bytes:"))
    with open("/proc/vmstat") as f:
        system = next(int(line.split()[1]) for line in f if line.startswith("pgpgin "))
    return own / MiB, system / 1024


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def blob_pull_64(registry, data, round_):
    connection = connect(registry)
    pids = [process.pid for _, process in registry.processes]
    server_before, client_before = cpu_seconds(pids), time.process_time()
    started = time.perf_counter()
    for _ in range(PULL_REPEATS):
        for digest in data.large_digests:
            pull(connection, f"bench/large-{round_}", digest)
    elapsed = time.perf_counter() - started
    gib = data.large_count * PULL_REPEATS * 64 / 1024
    PULL_CPU.setdefault(registry.name, []).append(
        ((cpu_seconds(pids) - server_before) / gib, (time.process_time() - client_before) / gib))
    return data.large_count * PULL_REPEATS * 64 / elapsed


def blob_pull_1(registry, data, round_):
    connection = connect(registry)
    started = time.perf_counter()
    for digest in data.small_digests:
        pull(connection, f"bench/small-{round_}", digest)
    return data.small_count / (time.perf_counter() - started)


# A rollout: this many clients, released together, resolve a new tag and pull its layers (new
# 1 MiB blobs pushed in chunks, as docker pushes layers) in order, as the nodes of a deploy do.
ROLLOUT_CLIENTS = 16
ROLLOUT_LAYERS = 8


def push_rollout_image(registry, repository, tag, layers, digests):
    connection = connect(registry)
    for blob, digest in zip(layers, digests):
        push_streamed(connection, repository, blob, digest)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": digests}}).encode()
    config_digest = sha256(config)
    push_monolithic(connection, repository, config, config_digest)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": len(b)} for b, d in zip(layers, digests)],
    }).encode()
    connection.request("PUT", f"/v2/{repository}/manifests/{tag}", body=manifest,
                       headers={"Content-Type": OCI_MANIFEST, "Content-Length": str(len(manifest))})
    check(connection.getresponse(), (201,), "manifest put")
    connection.close()


def rollout_burst(registry, repository, tag, digests, clients, aborting=0):
    """`clients` threads, released together, each GETting the manifest by tag and every layer in
    order; the seconds until the last one is done. `aborting` more threads, released with them,
    request every layer and hang up as soon as the answer begins (nodes that die mid-rollout):
    the others must still get every byte, none waiting longer than a minute."""
    barrier = threading.Barrier(clients + aborting + 1)
    failures = []

    def aborter():
        barrier.wait()
        for digest in digests:
            with socket.create_connection(("127.0.0.1", registry.port)) as raw:
                raw.sendall(f"GET /v2/{repository}/blobs/{digest} HTTP/1.1\r\nHost: registry\r\n\r\n".encode())
                raw.recv(100)

    def client():
        connection = connect(registry)
        try:
            barrier.wait()
            connection.request("GET", f"/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            manifest = json.loads(check(connection.getresponse(), (200,), "manifest get"))
            if [layer["digest"] for layer in manifest["layers"]] != digests:
                failures.append("another manifest")
            for digest in digests:
                pull(connection, repository, digest)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    threads += [threading.Thread(target=aborter, daemon=True) for _ in range(aborting)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        failures.append("a client still waits after 60 s")
    if failures:
        raise RuntimeError(f"{registry.name}: {failures[:3]}")
    return elapsed


def rollout(registry, data, round_):
    repository = f"bench/rollout-{round_}"
    push_rollout_image(registry, repository, "v1", data.rollout, data.rollout_digests)
    return 1 / rollout_burst(registry, repository, "v1", data.rollout_digests, ROLLOUT_CLIENTS)


def blob_pull_1_cold(registry, data, round_):
    """The 1 MiB pulls again from a dropped page cache (root only): what a registry with more blobs
    than memory serves, as the plain row may measure by chance (docs/performance.md, seventh pass)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as caches:
        caches.write("1\n")
    return blob_pull_1(registry, data, round_)


def curl_h2(registry, arguments):
    """curl over HTTP/2 (ALPN) against a TLS registry; fails if it fell back to HTTP/1.1."""
    output = subprocess.run(["curl", "-sS", "--http2", "--cacert", registry.tls, "-o", "/dev/null",
                             "-w", "%{http_version} %{http_code}"] + arguments, check=True, capture_output=True, text=True).stdout
    if output.split()[0] != "2":
        raise RuntimeError(f"curl did not speak HTTP/2 with {registry.name}: {output}")
    return output.split()[1]


def blob_push_64_h2(registry, data, round_):
    """The 64 MiB blobs, each a POST (Python) and a monolithic PUT streamed by curl over HTTP/2."""
    if not registry.tls:
        return None
    connection = connect(registry)
    started = time.perf_counter()
    for index, digest in enumerate(data.large_digests):
        location = start_upload(connection, f"bench/h2-{round_}")
        status = curl_h2(registry, ["-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary",
                                    "@" + data.large_file(index), registry.base + with_digest(location, digest)])
        if status != "201":
            raise RuntimeError(f"h2 push: {status}")
    return data.large_count * 64 / (time.perf_counter() - started)


# Peak resident memory of each server process during the HTTP/2 pulls, per registry (MiB).
H2_PEAKS = {}


def blob_pull_64_h2(registry, data, round_):
    if not registry.tls:
        return None
    registry.reset_peak()
    started = time.perf_counter()
    for _ in range(PULL_REPEATS // 2):
        for digest in data.large_digests:
            if curl_h2(registry, [f"{registry.base}/v2/bench/h2-{round_}/blobs/{digest}"]) != "200":
                raise RuntimeError("h2 pull failed")
    elapsed = time.perf_counter() - started
    for label, peak in registry.peaks().items():
        H2_PEAKS.setdefault(registry.name, {})[label] = max(peak, H2_PEAKS.get(registry.name, {}).get(label, 0))
    return data.large_count * (PULL_REPEATS // 2) * 64 / elapsed


MANIFEST_DIGESTS = {}


def manifest_get(registry, data, round_, duration, by_digest=False):
    if registry.name not in MANIFEST_DIGESTS:
        MANIFEST_DIGESTS[registry.name] = push_image(connect(registry), "bench/manifest", "v1", 1024, "manifest")
    reference = MANIFEST_DIGESTS[registry.name] if by_digest else "v1"
    output = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{duration}s", "--latency", "-H", f"Accept: {OCI_MANIFEST}",
         f"{registry.base}/v2/bench/manifest/manifests/{reference}"],
        check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError("manifest GET answered errors:\n" + output)

    def latency(label):
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": latency("50%"), "p99": latency("99%")}


def _pusher(arguments):
    port, tls, client, images, round_, barrier_at = arguments
    while time.time() < barrier_at:
        time.sleep(0.001)
    connection = make_connection(port, tls)
    for image in range(images):
        push_image(connection, f"team/c{client}", f"r{round_}-{image}", 256 * 1024, f"{round_}-{client}-{image}-{port}")
    return time.time()


def concurrent_pushes(registry, data, round_, pool, images_per_client):
    barrier_at = time.time() + 0.5
    ends = pool.map(_pusher, [(registry.port, registry.tls, client, images_per_client, round_, barrier_at) for client in range(8)])
    return 8 * images_per_client / (max(ends) - barrier_at)


def memory(registry, data, round_):
    """Resident memory before (after all other workloads) and peak during the transfer."""
    before = registry.peaks("VmRSS")
    registry.reset_peak()
    connection = connect(registry)
    location = start_upload(connection, "bench/memory")
    body = (data.memory_block for _ in range(data.memory_size // MiB))
    connection.request("PATCH", location, body=body, encode_chunked=True,
                       headers={"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    check(response, (202,), "patch")
    connection.request("PUT", with_digest(path_of(response.getheader("Location")), data.memory_digest),
                       headers={"Content-Length": "0"})
    check(connection.getresponse(), (201,), "commit")
    size = pull(connection, "bench/memory", data.memory_digest)
    assert size == data.memory_size
    return {label: (before[label], peak) for label, peak in registry.peaks().items()}


def _serve_file(arguments):
    path, mode, repeats, ports = arguments
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    ports.put(server.getsockname()[1])
    connection, _ = server.accept()
    with open(path, "rb") as f:
        for _ in range(repeats):
            f.seek(0)
            if mode == "sendfile":
                connection.sendfile(f)
            else:
                while True:
                    block = f.read(256 * 1024)
                    if not block:
                        break
                    connection.sendall(block)
    connection.close()


def fsync_limit(data, work):
    """MB/s of writing a 64 MiB blob to a file in the benchmark's directory and fsyncing it, as
    pierone does before a blob becomes visible (Distribution does not fsync): the durability part
    of a push on this disk."""
    path = os.path.join(work, "fsync-limit.bin")
    rates = []
    for _ in range(4):
        started = time.perf_counter()
        with open(path, "wb") as f:
            f.write(data.large[0])
            f.flush()
            os.fsync(f.fileno())
        rates.append(64 / (time.perf_counter() - started))
        os.remove(path)
    return statistics.median(rates)


def aes_gcm_limit():
    """MB/s of AES-128-GCM (the internal TLS's cipher) on one core with 16 KiB TLS records."""
    try:
        output = subprocess.run(["openssl", "speed", "-elapsed", "-evp", "aes-128-gcm", "-bytes", "16384",
                                 "-seconds", "2"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    last = [line for line in output.splitlines() if line.lower().startswith("aes-128-gcm")]
    if not last:
        return None
    return float(last[-1].split()[-1].rstrip("k")) * 1000 / MiB


def copy_limit(data, work):
    """What serving a file over loopback costs with a copy through user space (read + write, as
    pierone does) against sendfile (zero-copy, as Go's net/http does for Distribution), with the
    same reader: the physical ceiling for a pull on this machine."""
    path = os.path.join(work, "copy-limit.bin")
    with open(path, "wb") as f:
        f.write(data.large[0])
    repeats = 16
    results = {}
    manager = multiprocessing.Manager()
    for mode in ("read+write", "sendfile"):
        ports = manager.Queue()
        server = multiprocessing.Process(target=_serve_file, args=((path, mode, repeats, ports),))
        server.start()
        client = socket.create_connection(("127.0.0.1", ports.get()))
        buffer = bytearray(MiB)
        started, total = time.perf_counter(), 0
        while True:
            n = client.recv_into(buffer)
            if n == 0:
                break
            total += n
        results[mode] = total / MiB / (time.perf_counter() - started)
        client.close()
        server.join()
    return results


# --- the run ------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller data and shorter runs, to try the script")
    parser.add_argument("--only", default="distribution,pierone,pierone-pg,split,split-plain,split-pg,relay,"
                                          "distribution-s3,pierone-pg-s3")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--blob-only", action="store_true",
                        help="only the blob push and pull rows (no manifest GETs, concurrent pushes or memory)")
    parser.add_argument("--disk-reads", action="store_true",
                        help="also report every round's result with the MiB read from the disk during it "
                             "(by the registry's processes, by the whole system): reads the page cache missed")
    parser.add_argument("--baseline", help="an earlier pierone binary: adds NAME@base for each --only name "
                                           "listed in --baseline-names, run with it")
    parser.add_argument("--baseline-names", default="pierone-pg,split-pg")
    options = parser.parse_args()
    names = options.only.split(",")
    if options.baseline:
        os.environ["PIERONE_BASELINE_BIN"] = options.baseline
        names += [name + "@base" for name in options.baseline_names.split(",")]
    work = tempfile.mkdtemp(prefix="pierone-bench-")
    registries = []
    postgres = moto = None
    try:
        starters = {
            "distribution": lambda: start_distribution(work),
            "pierone": lambda: start_pierone(work, "pierone"),
            "pierone-pg": lambda: start_pierone(work, "pierone-pg", dict(DATABASE_URL=database_url)),
            "split": lambda: start_split(work),
            "split-plain": lambda: start_split(work, "split-plain", internal_tls=False),
            "split-pg": lambda: start_split(work, "split-pg", database_url=database("split_pg")),
            "relay": lambda: start_relay(work),
            "distribution-s3": lambda: start_distribution(work, "distribution-s3", s3=s3_endpoint),
            "distribution-tls": lambda: start_distribution(work, "distribution-tls", tls=True),
            "pierone-tls": lambda: start_pierone(work, "pierone-tls", tls=True),
            "pierone-pg-s3": lambda n="pierone-pg-s3": start_pierone(work, n, dict(
                DATABASE_URL=database(n.replace("-", "_").replace("@", "_")), STORAGE_S3_BUCKET=bucket_of(n),
                STORAGE_S3_ENDPOINT=s3_endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret",
                AWS_REGION="us-east-1")),
        }

        def database(name):
            """A database of its own on the cluster, for a second registry on PostgreSQL."""
            subprocess.run(["psql", database_url, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
            return database_url.replace("/postgres?", f"/{name}?")

        if any(name.split("@")[0] in ("pierone-pg", "split-pg", "pierone-pg-s3") for name in names):
            database_url, postgres = start_postgres(work)
        if any(name.endswith("-s3") for name in names):
            s3_endpoint, moto = start_moto(work, [bucket_of(name) for name in names if name.split("@")[0].endswith("-s3")])
        for name in names:
            base = name.split("@")[0]
            if "@" in name:
                # The same starter under its own name (and so its own storage and database).
                starters[name] = {
                    "pierone": lambda n=name: start_pierone(work, n),
                    "pierone-pg": lambda n=name: start_pierone(work, n, dict(DATABASE_URL=database(n.replace("-", "_").replace("@", "_")))),
                    "split": lambda n=name: start_split(work, n),
                    "split-plain": lambda n=name: start_split(work, n, internal_tls=False),
                    "split-pg": lambda n=name: start_split(work, n, database_url=database(n.replace("-", "_").replace("@", "_"))),
                    "pierone-pg-s3": lambda n=name: starters["pierone-pg-s3"](n),
                }[base]
            registries.append(starters[name]())
        data = Data(options.quick)
        data.work = work
        duration = 5 if options.quick else 10
        images = 5 if options.quick else 20
        pool = multiprocessing.Pool(8)
        workloads = [
            ("blob push 64 MiB (MB/s)", blob_push_64),
            ("blob push 1 MiB (blobs/s)", blob_push_1),
            ("blob pull 64 MiB (MB/s)", blob_pull_64),
            ("blob pull 1 MiB (blobs/s)", blob_pull_1),
        ]
        if os.access("/proc/sys/vm/drop_caches", os.W_OK):
            workloads.append(("blob pull 1 MiB, cold (blobs/s)", blob_pull_1_cold))
        workloads.append((f"blob pull, rollout: {ROLLOUT_CLIENTS} clients, new tag + {ROLLOUT_LAYERS} MiB (bursts/s)", rollout))
        workloads += [
            ("manifest GET", lambda r, d, n: manifest_get(r, d, n, duration)),
            ("manifest GET by digest", lambda r, d, n: manifest_get(r, d, n, duration, by_digest=True)),
            ("8 concurrent pushes (images/s)", lambda r, d, n: concurrent_pushes(r, d, n, pool, images)),
        ]
        if options.blob_only:
            workloads = [w for w in workloads if w[0].startswith("blob ")]
        if any(r.tls for r in registries) and not options.blob_only:
            workloads += [("blob push 64 MiB, HTTP/2 curl (MB/s)", blob_push_64_h2),
                          ("blob pull 64 MiB, HTTP/2 curl (MB/s)", blob_pull_64_h2)]
        results = {(w, r.name): [] for w, _ in workloads for r in registries}
        disk_counts = {(w, r.name): [] for w, _ in workloads for r in registries}
        for round_ in range(options.rounds):
            if round_ > 0:
                data.fresh()
            order = registries[round_ % len(registries):] + registries[:round_ % len(registries)]
            for workload, run in workloads:
                for registry in order:
                    # Write back what the previous run left dirty (Distribution does not fsync its
                    # blobs), so that no registry's run pays for another's page-cache writeback.
                    os.sync()
                    pids = [process.pid for _, process in registry.processes]
                    before = disk_reads(pids)
                    results[(workload, registry.name)].append(run(registry, data, round_))
                    after = disk_reads(pids)
                    disk_counts[(workload, registry.name)].append((after[0] - before[0], after[1] - before[1]))
            print(f"round {round_ + 1}/{options.rounds} done", file=sys.stderr)
        peaks = {}
        for registry in registries:
            # moto holds objects in Python memory: 1 GiB through it measures moto.
            if not registry.name.split("@")[0].endswith("-s3") and not options.blob_only:
                peaks[registry.name] = memory(registry, data, 0)
        report(workloads, registries, results, peaks, data, options)
        # Pulls whose blobs left the page cache measure the disk (this VM pages out file pages
        # idle for about a minute): how much each registry read from it, round by round.
        for workload in [w for w, _ in workloads if w.startswith("blob pull")]:
            print(f"MiB read from the disk during {workload.split(' (')[0]}, per round: " + ", ".join(
                f"{r.name} " + "/".join(f"{own:.0f}" for own, _ in disk_counts[(workload, r.name)]) for r in registries))
        if options.disk_reads:
            report_disk_reads(workloads, registries, results, disk_counts)
        print(f"limit, write + fsync of a 64 MiB file here (pierone fsyncs every blob, Distribution none): "
              f"{fsync_limit(data, work):.0f} MB/s")
        aes = aes_gcm_limit()
        if aes:
            print(f"limit, AES-128-GCM on one core (openssl speed, 16 KiB records): {aes:.0f} MB/s = "
                  f"{1024 / aes:.2f} CPU seconds per GiB to encrypt, as much again to decrypt "
                  f"(split with internal TLS does both for every pulled byte)")
        limit = copy_limit(data, work)
        print(f"limit, loopback file -> socket (same reader): read+write {limit['read+write']:.0f} MB/s, "
              f"sendfile {limit['sendfile']:.0f} MB/s ({limit['read+write'] / limit['sendfile']:.2f}x)")
        if options.json:
            with open(options.json, "w") as f:
                json.dump({"results": {f"{w}|{r}": v for (w, r), v in results.items()}, "peaks": peaks}, f, indent=1)
    finally:
        for registry in registries:
            registry.stop()
        for process in (postgres, moto):
            if process:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)


def report_disk_reads(workloads, registries, results, disk_counts):
    """Every round's result of each workload, with the MiB read from the disk during it."""
    print()
    print("every round: result [MiB read from the disk by the registry's processes / by the system during the run]")
    for workload, _ in workloads:
        print(workload)
        for registry in registries:
            cells = []
            for value, (own, system) in zip(results[(workload, registry.name)], disk_counts[(workload, registry.name)]):
                shown = f"{value['rps']:.0f} req/s" if isinstance(value, dict) else f"{value:.1f}" if value is not None else "-"
                cells.append(f"{shown} [{own:.0f}/{system:.0f}]")
            print(f"  {registry.name:18} " + "  ".join(cells))


def report(workloads, registries, results, peaks, data, options):
    names = [r.name for r in registries]
    reference = "distribution" if "distribution" in names else None
    rows = []

    def against(name):
        """The reference of a registry's ratios: Distribution on S3 for the production rows."""
        if name.split("@")[0].endswith("-s3"):
            return "distribution-s3" if name != "distribution-s3" and "distribution-s3" in names else None
        if name.split("@")[0].endswith("-tls"):
            return "distribution-tls" if name != "distribution-tls" and "distribution-tls" in names else None
        return reference if name != reference else None

    def add(label, values, higher_is_better=True, unit_format="{:.0f}"):
        cells = [label]
        for name in names:
            value = values[name]
            cell = unit_format.format(value) if value is not None else "-"
            base = against(name)
            if base and values[base] and value is not None:
                ratio = value / values[base]
                cell += f" ({ratio:.2f}x)"
            cells.append(cell)
        rows.append(cells)

    for workload, _ in workloads:
        if workload.startswith("manifest GET"):
            for key, label, fmt in (("rps", f"{workload} (req/s)", "{:.0f}"), ("p50", f"{workload} p50 (ms)", "{:.2f}"),
                                    ("p99", f"{workload} p99 (ms)", "{:.2f}")):
                add(label, {n: statistics.median(x[key] for x in results[(workload, n)]) for n in names}, unit_format=fmt)
            # The target is a p99 below Distribution's in every round, not only in the median.
            worst = {n: max(x["p99"] / r["p99"] for x, r in zip(results[(workload, n)], results[(workload, against(n))]))
                     for n in names if against(n)}
            rows.append([f"{workload} p99, worst round (x ref)"] + [
                f"{worst[n]:.2f}x" if n in worst else "" for n in names])
        else:
            add(workload, {n: statistics.median(results[(workload, n)]) if None not in results[(workload, n)] else None
                           for n in names},
                unit_format="{:.1f}" if "images" in workload or "bursts" in workload else "{:.0f}")
    memory_label = f"RSS MiB before -> peak, {data.memory_size // MiB} MiB push+pull"
    rows.append([memory_label] + [", ".join(f"{k} {v[0]}->{v[1]}" for k, v in peaks[n].items()) if n in peaks else "-"
                                  for n in names])
    widths = [max(len(row[i]) for row in rows + [["workload"] + names]) for i in range(len(names) + 1)]
    print()
    print(f"{options.rounds} rounds, median; ratio = this registry / distribution in the same run "
          f"(the -s3 rows: / distribution-s3, the -tls rows: / distribution-tls)")
    print("  ".join(h.ljust(widths[i]) for i, h in enumerate(["workload"] + names)))
    for row in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)))
    cpu = {n: (statistics.median(x[0] for x in PULL_CPU[n]), statistics.median(x[1] for x in PULL_CPU[n]))
           for n in names if n in PULL_CPU}
    if H2_PEAKS:
        print("peak RSS MiB during the HTTP/2 pulls: " + ", ".join(
            f"{n} " + ", ".join(f"{k} {v}" for k, v in peaks.items()) for n, peaks in H2_PEAKS.items()))
    print("pull 64 MiB, CPU seconds per GiB (server processes + this client): "
          + ", ".join(f"{n} {server:.2f} + {client:.2f}" for n, (server, client) in cpu.items()))
    if "relay" in names and "pierone" in names:
        for workload in ("blob push 64 MiB (MB/s)", "blob pull 64 MiB (MB/s)"):
            relayed = statistics.median(results[(workload, "relay")])
            single = statistics.median(results[(workload, "pierone")])
            print(f"limit, one splice hop in front of all-in-one (relay / all-in-one), {workload}: {relayed / single:.2f}x")
    if "split" in names and "pierone" in names:
        for workload in ("blob push 64 MiB (MB/s)", "blob pull 64 MiB (MB/s)"):
            split = statistics.median(results[(workload, "split")])
            single = statistics.median(results[(workload, "pierone")])
            print(f"split / all-in-one, {workload}: {split / single:.2f}x")
        # Every process shares the same cores, so a CPU-bound pull can at best run at the ratio of
        # the CPU each byte costs in all: the ceiling for split / all-in-one on this machine.
        for name in ("split", "split-plain"):
            if name in cpu:
                ceiling = sum(cpu["pierone"]) / sum(cpu[name])
                print(f"ceiling from CPU per byte, {name} / all-in-one pull: {ceiling:.2f}x")


if __name__ == "__main__":
    main()
