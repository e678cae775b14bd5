import Foundation
import Runtime
import Synchronization
import Testing
import TestSupport

/// The gateway serving HTTPS itself (`HTTP_TLS_*`): the built `pierone serve` binary on loopback,
/// real clients (curl, skopeo, podman, oras) trusting a test CA made by `scripts/dev-certs`.
@Suite struct HTTPSTests {
    /// Two CAs from `scripts/dev-certs`: `a/` signs the served certificates (gateway, blob) and a
    /// client certificate (metadata); `b/` is a CA the registry does not know.
    struct Certificates {
        let directory: URL
        var a: URL { self.directory.appendingPathComponent("a") }
        var b: URL { self.directory.appendingPathComponent("b") }
        var ca: String { self.a.appendingPathComponent("ca.crt").path }
        func path(_ name: String, in ca: String = "a") -> String {
            self.directory.appendingPathComponent(ca).appendingPathComponent(name).path
        }

        static func make(in scratch: URL) async throws -> Certificates {
            let certificates = Certificates(directory: scratch.appendingPathComponent("certs"))
            let script = SplitModeTests.repositoryRoot.appendingPathComponent("scripts/dev-certs").path
            try await Command.run([script, certificates.a.path])
            try await Command.run([script, certificates.b.path])
            return certificates
        }

        /// A directory as skopeo and podman read it (`--cert-dir`): the CA, and a client pair.
        func clientDirectory(_ scratch: URL, client: (certificate: String, key: String)? = nil) throws -> String {
            let directory = scratch.appendingPathComponent("client-\(UUID().uuidString.prefix(6))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: self.ca, toPath: directory.appendingPathComponent("ca.crt").path)
            if let client {
                try FileManager.default.copyItem(atPath: client.certificate, toPath: directory.appendingPathComponent("client.cert").path)
                try FileManager.default.copyItem(atPath: client.key, toPath: directory.appendingPathComponent("client.key").path)
            }
            return directory.path
        }
    }

    /// `pierone serve` with `environment` on a free port, once `/health/ready` answers over HTTPS.
    static func serve(
        _ scratch: URL, certificate: String, key: String, environment: [String: String] = [:],
        curlTLS: [String]
    ) async throws -> (process: ServiceProcess, port: Int) {
        let port = try PostgresCluster.freePort()
        let process = try ServiceProcess(
            "serve-https-\(UUID().uuidString.prefix(4))", arguments: ["serve"],
            environment: [
                "HTTP_PORT": String(port), "HTTP_BIND_ADDRESS": "127.0.0.1", "LOG_LEVEL": "info",
                "STORAGE_DIRECTORY": scratch.appendingPathComponent("data-\(port)").path,
                "HTTP_TLS_CERT": certificate, "HTTP_TLS_KEY": key,
            ].merging(environment) { $1 },
            logDirectory: scratch
        )
        for _ in 0..<400 {
            let status = try? await Command.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"] + curlTLS + ["https://localhost:\(port)/health/ready"]
            )
            if status == "200" { return (process, port) }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.stop()
        throw PostgresCluster.SetupError("pierone serve over HTTPS never became ready:\n\(process.output)")
    }

    /// The serial number of the certificate a new handshake with the server shows.
    static func servedSerial(_ port: Int) async throws -> String {
        try await Command.run([
            "/bin/sh", "-c",
            "openssl s_client -connect 127.0.0.1:\(port) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial",
        ]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func serial(of certificate: String) async throws -> String {
        try await Command.run(["openssl", "x509", "-noout", "-serial", "-in", certificate]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// podman as root with its own storage (vfs: no kernel overlay needed) under `storage`, whose
    /// path podman wants short (its run root at most 50 characters).
    static func podman(_ storage: URL, _ arguments: [String], environment: [String: String] = [:]) async throws {
        try await Command.run(
            ["podman", "--root", storage.appendingPathComponent("root").path, "--runroot", storage.appendingPathComponent("run").path,
             "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"] + arguments,
            environment: environment
        )
    }

    static let orasScript = """
        import sys, oras.client
        host, target, path, out = sys.argv[1:5]
        client = oras.client.OrasClient(hostname=host, insecure=False, tls_verify=True)
        client.push(files=[path], target=target, disable_path_validation=True)
        print("\\n".join(client.pull(target=target, outdir=out)))
        """

    /// curl negotiates HTTP/2 (and HTTP/1.1 when asked), TLS 1.1 is refused; skopeo, podman and
    /// oras push and pull with the test CA, and a client that does not trust it is refused.
    @Test func clientsPushAndPullOverHTTPSWithHTTP2() async throws {
        try await ClientTests.withScratch { scratch in
            let certificates = try await Certificates.make(in: scratch)
            let (serve, port) = try await Self.serve(
                scratch, certificate: certificates.path("gateway.crt"), key: certificates.path("gateway.key"),
                curlTLS: ["--cacert", certificates.ca]
            )
            defer { serve.stop() }
            let base = "https://localhost:\(port)"
            let version = ["-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "--cacert", certificates.ca]
            #expect(try await Command.run(["curl", "--http2"] + version + [base + "/v2/"]) == "2 200")
            #expect(try await Command.run(["curl", "--http1.1"] + version + [base + "/v2/"]) == "1.1 200")
            await #expect(throws: Command.Failure.self) {
                try await Command.run(["curl", "-s", "--tlsv1", "--tls-max", "1.1", "--cacert", certificates.ca, base + "/v2/"])
            }
            await #expect(throws: Command.Failure.self, "a client without the CA does not trust the registry") {
                try await Command.run(["curl", "-s", base + "/v2/"])
            }

            // Over HTTP/2 a body may come without Content-Length: a closing PUT and a monolithic
            // POST streamed from a pipe are stored, not taken for empty.
            let blob = scratch.appendingPathComponent("streamed.bin")
            try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: blob)
            let digest = try await Command.run(["sha256sum", blob.path]).prefix(64)
            let location = try #require(try await Command.run([
                "curl", "-sf", "--cacert", certificates.ca, "-X", "POST", "-D", "-", "-o", "/dev/null", base + "/v2/team/piped/blobs/uploads/",
            ]).split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }?.dropFirst("location: ".count))
            for url in [base + location + "?digest=sha256:\(digest)", base + "/v2/team/piped2/blobs/uploads/?digest=sha256:\(digest)"] {
                let method = url.contains("uploads/?") ? "POST" : "PUT"
                let answer = try await Command.run([
                    "/bin/sh", "-c",
                    "cat '\(blob.path)' | curl -s --http2 --cacert '\(certificates.ca)' -X \(method) -T - -o /dev/null -w '%{http_version} %{http_code}' '\(url)'",
                ])
                #expect(answer == "2 201", "\(method) \(answer)")
            }
            let pulledBlob = try await Command.run([
                "/bin/sh", "-c", "curl -sf --http2 --cacert '\(certificates.ca)' '\(base)/v2/team/piped/blobs/sha256:\(digest)' | sha256sum",
            ])
            #expect(pulledBlob.prefix(64) == digest)

            // skopeo (Go: HTTP/2 by ALPN) pushes and pulls with the CA; without it, it is refused.
            try await ClientTests.makeOCILayout(at: scratch, content: "image over https")
            let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
            let trusted = try certificates.clientDirectory(scratch)
            try await ClientTests.skopeo(["copy", "--dest-cert-dir", trusted, layout, "docker://localhost:\(port)/team/app:1.0"])
            let pulled = scratch.appendingPathComponent("pulled")
            try await ClientTests.skopeo(["copy", "--src-cert-dir", trusted, "docker://localhost:\(port)/team/app:1.0", "oci:\(pulled.path):1.0"])
            #expect(FileManager.default.fileExists(atPath: pulled.appendingPathComponent("index.json").path))
            await #expect(throws: Command.Failure.self) {
                try await ClientTests.skopeo(["inspect", "docker://localhost:\(port)/team/app:1.0"])
            }

            // podman pulls what skopeo pushed and pushes it under another name.
            let storage = URL(fileURLWithPath: "/tmp/pm-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: storage) }
            try await Self.podman(storage, ["pull", "--cert-dir", trusted, "localhost:\(port)/team/app:1.0"])
            try await Self.podman(storage, [
                "push", "--cert-dir", trusted, "localhost:\(port)/team/app:1.0", "docker://localhost:\(port)/team/podman:1.0",
            ])
            let tags = try await Command.run(["curl", "-sf", "--cacert", certificates.ca, base + "/v2/team/podman/tags/list"])
            #expect(tags.contains("\"1.0\""), "\(tags)")

            // oras (Python requests) pushes and pulls an artifact, trusting the CA through its bundle.
            let artifact = scratch.appendingPathComponent("artifact.txt")
            let content = String(repeating: "artifact over https\n", count: 100)
            try Data(content.utf8).write(to: artifact)
            let out = scratch.appendingPathComponent("oras-out")
            try await Command.run(
                ["python3", "-c", Self.orasScript, "localhost:\(port)", "localhost:\(port)/team/artifact:v1", artifact.path, out.path],
                in: scratch, environment: ["REQUESTS_CA_BUNDLE": certificates.ca]
            )
            #expect(try String(contentsOf: out.appendingPathComponent("artifact.txt"), encoding: .utf8) == content)
            #expect(serve.output.contains("TLS on the public listener"))
        }
    }

    /// The files replaced in place under a running registry (as cert-manager does): a new handshake
    /// shows the new certificate within seconds, with no restart and no failed request meanwhile;
    /// a broken pair written next is logged and the working certificate kept.
    @Test func aReplacedCertificateIsServedWithoutRestart() async throws {
        try await ClientTests.withScratch { scratch in
            let certificates = try await Certificates.make(in: scratch)
            let certificate = scratch.appendingPathComponent("tls.crt").path
            let key = scratch.appendingPathComponent("tls.key").path
            try FileManager.default.copyItem(atPath: certificates.path("gateway.crt"), toPath: certificate)
            try FileManager.default.copyItem(atPath: certificates.path("gateway.key"), toPath: key)
            let (serve, port) = try await Self.serve(
                scratch, certificate: certificate, key: key, environment: ["HTTP_TLS_RELOAD_INTERVAL": "1"],
                curlTLS: ["--cacert", certificates.ca]
            )
            defer { serve.stop() }
            let first = try await Self.serial(of: certificates.path("gateway.crt"))
            let second = try await Self.serial(of: certificates.path("blob.crt"))
            #expect(first != second)
            #expect(try await Self.servedSerial(port) == first)

            // Clients keep calling, each on a new connection, while the files change.
            let failures = Mutex<[String]>([])
            let calls = Mutex(0)
            let stop = Mutex(false)
            let client = Task {
                while !stop.withLock({ $0 }) {
                    let status = (try? await Command.run([
                        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.ca, "https://localhost:\(port)/v2/",
                    ])) ?? "failed"
                    calls.withLock { $0 += 1 }
                    if status != "200" { failures.withLock { $0.append(status) } }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            // Rewritten in place, the certificate first: for a moment the pair does not match.
            try Data(contentsOf: URL(fileURLWithPath: certificates.path("blob.crt"))).write(to: URL(fileURLWithPath: certificate))
            try await Task.sleep(for: .milliseconds(1500))
            try Data(contentsOf: URL(fileURLWithPath: certificates.path("blob.key"))).write(to: URL(fileURLWithPath: key))
            var served = ""
            for _ in 0..<60 {
                served = try await Self.servedSerial(port)
                if served == second { break }
                try await Task.sleep(for: .seconds(1))
            }
            #expect(served == second, "the new certificate is served within a minute")

            // A broken pair: the gateway's key with the blob certificate. Logged; the working pair stays.
            try Data(contentsOf: URL(fileURLWithPath: certificates.path("gateway.key"))).write(to: URL(fileURLWithPath: key))
            try await Task.sleep(for: .seconds(3))
            #expect(try await Self.servedSerial(port) == second)
            try await Task.sleep(for: .milliseconds(500))
            stop.withLock { $0 = true }
            await client.value
            #expect(failures.withLock { $0 } == [], "no request failed during the rotation")
            #expect(calls.withLock { $0 } > 5)
            #expect(serve.isRunning, "no restart")
            let log = serve.output
            #expect(log.contains("new TLS certificate in use"), "\(log)")
            #expect(log.contains("cannot be used; the previous certificate stays in use") && log.contains("does not match"), "\(log)")
        }
    }

    /// With `HTTP_TLS_CLIENT_CA`, only clients with a certificate from that CA complete the handshake.
    @Test func clientCertificatesFromTheCAOnly() async throws {
        try await ClientTests.withScratch { scratch in
            let certificates = try await Certificates.make(in: scratch)
            let member = ["--cert", certificates.path("metadata.crt"), "--key", certificates.path("metadata.key")]
            let (serve, port) = try await Self.serve(
                scratch, certificate: certificates.path("gateway.crt"), key: certificates.path("gateway.key"),
                environment: ["HTTP_TLS_CLIENT_CA": certificates.ca], curlTLS: ["--cacert", certificates.ca] + member
            )
            defer { serve.stop() }
            let url = "https://localhost:\(port)/v2/"
            let base = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.ca]
            #expect(try await Command.run(base + member + [url]) == "200")
            await #expect(throws: Command.Failure.self, "no client certificate") {
                try await Command.run(base + [url])
            }
            await #expect(throws: Command.Failure.self, "a certificate from another CA") {
                try await Command.run(base + ["--cert", certificates.path("gateway.crt", in: "b"), "--key", certificates.path("gateway.key", in: "b"), url])
            }
            // skopeo with the client pair in its certificate directory.
            try await ClientTests.makeOCILayout(at: scratch, content: "image over mutual tls")
            let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
            let withClient = try certificates.clientDirectory(
                scratch, client: (certificates.path("metadata.crt"), certificates.path("metadata.key"))
            )
            try await ClientTests.skopeo(["copy", "--dest-cert-dir", withClient, layout, "docker://localhost:\(port)/team/app:1.0"])
            await #expect(throws: Command.Failure.self) {
                try await ClientTests.skopeo(["inspect", "--cert-dir", try certificates.clientDirectory(scratch), "docker://localhost:\(port)/team/app:1.0"])
            }
        }
    }

    /// Each bad setting stops the start with exit status 78 and the variable's name.
    @Test func badSettingsAreRefusedAtStart() async throws {
        try await ClientTests.withScratch { scratch in
            let certificates = try await Certificates.make(in: scratch)
            let unreadable = scratch.appendingPathComponent("missing.pem").path
            let fifo = scratch.appendingPathComponent("fifo.pem").path
            try await Command.run(["mkfifo", fifo])
            let cases: [(environment: [String: String], variable: String, says: String)] = [
                (["HTTP_TLS_CERT": unreadable, "HTTP_TLS_KEY": certificates.path("gateway.key")], "HTTP_TLS_CERT", "cannot read"),
                (["HTTP_TLS_CERT": certificates.path("gateway.crt"), "HTTP_TLS_KEY": unreadable], "HTTP_TLS_KEY", "cannot read"),
                (["HTTP_TLS_CERT": certificates.path("gateway.crt")], "HTTP_TLS_KEY", "is needed"),
                (["HTTP_TLS_KEY": certificates.path("gateway.key")], "HTTP_TLS_CERT", "is needed"),
                (["HTTP_TLS_CERT": certificates.path("gateway.crt"), "HTTP_TLS_KEY": certificates.path("blob.key")], "HTTP_TLS_KEY", "does not match"),
                (["HTTP_TLS_CERT": certificates.path("gateway.key"), "HTTP_TLS_KEY": certificates.path("gateway.key")], "HTTP_TLS_CERT", "PEM certificate"),
                (["HTTP_TLS_CERT": certificates.path("gateway.crt"), "HTTP_TLS_KEY": certificates.path("gateway.crt")], "HTTP_TLS_KEY", "private key"),
                ([
                    "HTTP_TLS_CERT": certificates.path("gateway.crt"), "HTTP_TLS_KEY": certificates.path("gateway.key"),
                    "HTTP_TLS_CLIENT_CA": unreadable,
                ], "HTTP_TLS_CLIENT_CA", "cannot read"),
                (["HTTP_TLS_CLIENT_CA": certificates.ca], "HTTP_TLS_CLIENT_CA", "needs HTTP_TLS_CERT"),
                (["HTTP_TLS_CERT": fifo, "HTTP_TLS_KEY": certificates.path("gateway.key")], "HTTP_TLS_CERT", "not a regular file"),
                (["HTTP_TLS_CERT": "/dev/zero", "HTTP_TLS_KEY": certificates.path("gateway.key")], "HTTP_TLS_CERT", "not a regular file"),
                (["HTTP_IDLE_TIMEOUT": "-1"], "HTTP_IDLE_TIMEOUT", "0...86400"),
                ([
                    "HTTP_TLS_CERT": certificates.path("gateway.crt"), "HTTP_TLS_KEY": certificates.path("gateway.key"),
                    "HTTP_TLS_RELOAD_INTERVAL": "0",
                ], "HTTP_TLS_RELOAD_INTERVAL", "1...3600"),
            ]
            for (environment, variable, says) in cases {
                let data = scratch.appendingPathComponent("data-\(UUID().uuidString.prefix(6))")
                var failure: Command.Failure?
                do {
                    try await Command.run(
                        [ServiceProcess.executable.path, "serve"],
                        environment: ["HTTP_PORT": String(try PostgresCluster.freePort()), "STORAGE_DIRECTORY": data.path].merging(environment) { $1 }
                    )
                } catch let error as Command.Failure {
                    failure = error
                }
                #expect(failure?.status == 78, "\(environment)")
                #expect(failure?.output.contains("configuration error: \(variable)") == true && failure?.output.contains(says) == true, "\(failure?.output ?? "started")")
                #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("metadata.sqlite").path), "refused before opening the store")
            }
        }
    }

    /// Authentication on with a plain listener reachable from other machines: a warning that
    /// tokens travel in clear text. Not on loopback, not with TLS.
    @Test func plainListenerWithAuthenticationWarns() async throws {
        try await ClientTests.withScratch { scratch in
            let certificates = try await Certificates.make(in: scratch)
            func startupLog(_ environment: [String: String], https: Bool) async throws -> String {
                let port = try PostgresCluster.freePort()
                let serve = try ServiceProcess(
                    "serve-warn-\(UUID().uuidString.prefix(4))", arguments: ["serve"],
                    environment: [
                        "HTTP_PORT": String(port), "STORAGE_DIRECTORY": scratch.appendingPathComponent("data-\(port)").path,
                        "HTTP_TOKENINFO_URL": "http://127.0.0.1:9/oauth2/tokeninfo", "LOG_LEVEL": "info",
                    ].merging(environment) { $1 },
                    logDirectory: scratch
                )
                defer { serve.stop() }
                let url = (https ? "https://localhost:" : "http://127.0.0.1:") + "\(port)/health/live"
                for _ in 0..<400 {
                    let status = try? await Command.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.ca, url])
                    if status == "200" { return serve.output }
                    try await Task.sleep(for: .milliseconds(100))
                }
                throw PostgresCluster.SetupError("never answered:\n\(serve.output)")
            }
            let warning = "tokens travel in clear text"
            #expect(try await startupLog(["HTTP_BIND_ADDRESS": "0.0.0.0"], https: false).contains(warning))
            #expect(try await !startupLog(["HTTP_BIND_ADDRESS": "127.0.0.1"], https: false).contains(warning))
            #expect(try await !startupLog([
                "HTTP_BIND_ADDRESS": "0.0.0.0", "HTTP_TLS_CERT": certificates.path("gateway.crt"), "HTTP_TLS_KEY": certificates.path("gateway.key"),
            ], https: true).contains(warning))
        }
    }

    /// The store alone: an unchanged file is not reloaded, a usable new pair replaces the old one, a
    /// broken one is reported once and the old pair kept, a file gone for a moment changes nothing.
    @Test func certificateStoreReloads() async throws {
        try await ClientTests.withScratch { scratch in
            let certificates = try await Certificates.make(in: scratch)
            let certificate = scratch.appendingPathComponent("tls.crt")
            let key = scratch.appendingPathComponent("tls.key")
            func write(_ certificateName: String, _ keyName: String) throws {
                try Data(contentsOf: URL(fileURLWithPath: certificates.path(certificateName))).write(to: certificate)
                try Data(contentsOf: URL(fileURLWithPath: certificates.path(keyName))).write(to: key)
            }
            try write("gateway.crt", "gateway.key")
            let store = try CertificateStore(PublicTLS(certificatePath: certificate.path, keyPath: key.path))
            #expect(store.summary.contains("common_name=gateway"))
            #expect(store.reload() == .unchanged)
            try write("blob.crt", "blob.key")
            guard case .replaced(let summary) = store.reload() else { Issue.record("not replaced"); return }
            #expect(summary.contains("common_name=blob") && store.summary == summary)
            try write("blob.crt", "gateway.key")
            guard case .pending(let problem) = store.reload() else { Issue.record("not pending"); return }
            #expect(problem.contains("does not match"))
            guard case .refused = store.reload() else { Issue.record("not refused at the second look"); return }
            #expect(store.reload() == .unchanged, "reported once")
            #expect(store.summary.contains("common_name=blob"))
            try FileManager.default.removeItem(at: key)
            guard case .pending = store.reload() else { Issue.record("a missing key not reported"); return }
            // A FIFO where the key was: refused at once, not read (which would block forever).
            try await Command.run(["mkfifo", key.path])
            guard case .pending(let fifo) = store.reload() else { Issue.record("a FIFO not refused"); return }
            #expect(fifo.contains("not a regular file"))
            try FileManager.default.removeItem(at: key)
            try write("gateway.crt", "gateway.key")
            guard case .replaced = store.reload() else { Issue.record("not replaced after the gap"); return }
            #expect(store.summary.contains("common_name=gateway"))
            #expect(throws: ConfigurationError.self) {
                try CertificateStore(PublicTLS(certificatePath: certificate.path, keyPath: certificates.path("blob.key")))
            }
        }
    }

    /// With TLS on its own port, the token realm a 401 names is `https` (clients send their
    /// credentials there), without `HTTP_PUBLIC_URL` or `X-Forwarded-Proto`.
    @Test func theTokenRealmIsHTTPS() async throws {
        try await ClientTests.withScratch { scratch in
            let certificates = try await Certificates.make(in: scratch)
            let (serve, port) = try await Self.serve(
                scratch, certificate: certificates.path("gateway.crt"), key: certificates.path("gateway.key"),
                environment: [
                    "HTTP_TOKENINFO_URL": "http://127.0.0.1:9/oauth2/tokeninfo",
                    "TOKEN_SIGNING_KEYS": "k1=" + String(repeating: "s", count: 40),
                ],
                curlTLS: ["--cacert", certificates.ca]
            )
            defer { serve.stop() }
            for version in ["--http2", "--http1.1"] {
                let headers = try await Command.run(
                    ["curl", "-s", version, "--cacert", certificates.ca, "-o", "/dev/null", "-D", "-", "https://localhost:\(port)/v2/"]
                ).lowercased()
                #expect(headers.contains("www-authenticate: bearer realm=\"https://localhost:\(port)/v2/token\""), "\(headers)")
            }
        }
    }

    /// A connection that never starts its TLS handshake is closed after 10 s; one that finished it
    /// and then sends nothing, after `HTTP_IDLE_TIMEOUT` (HTTP/1.1), or for HTTP/2 it gets GOAWAY
    /// then and is closed 30 s later even when it ignores the GOAWAY and the PING sent with it.
    @Test func silentConnectionsAreClosed() async throws {
        try await ClientTests.withScratch { scratch in
            let certificates = try await Certificates.make(in: scratch)
            let (serve, port) = try await Self.serve(
                scratch, certificate: certificates.path("gateway.crt"), key: certificates.path("gateway.key"),
                environment: ["HTTP_IDLE_TIMEOUT": "2"], curlTLS: ["--cacert", certificates.ca]
            )
            defer { serve.stop() }
            // Each connection waits for the server to close it; the seconds it took are printed.
            let script = """
                import socket, ssl, sys, time
                port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
                raw = socket.create_connection(("127.0.0.1", port), timeout=60)
                started = time.monotonic()
                if mode == "tls":
                    context = ssl.create_default_context(cafile=ca)
                    context.set_alpn_protocols([sys.argv[4]])
                    raw = context.wrap_socket(raw, server_hostname="localhost")
                    if sys.argv[4] == "h2":
                        raw.sendall(b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
                    started = time.monotonic()
                try:
                    while raw.recv(65536):
                        pass
                except (ConnectionResetError, ssl.SSLError):
                    pass
                print(f"{time.monotonic() - started:.1f}")
                """
            func closedAfter(_ arguments: [String]) async throws -> Double {
                let output = try await Command.run(["python3", "-c", script, String(port), certificates.ca] + arguments)
                return try #require(Double(output.trimmingCharacters(in: .whitespacesAndNewlines)))
            }
            async let handshake = closedAfter(["raw"])
            async let http1 = closedAfter(["tls", "http/1.1"])
            async let http2 = closedAfter(["tls", "h2"])
            let (beforeHandshake, idle1, idle2) = try await (handshake, http1, http2)
            #expect(beforeHandshake >= 9 && beforeHandshake < 30, "no handshake: closed after \(beforeHandshake) s")
            #expect(idle1 >= 1.5 && idle1 < 20, "idle HTTP/1.1: closed after \(idle1) s")
            #expect(idle2 >= 31 && idle2 < 50, "idle HTTP/2 ignoring GOAWAY: closed after \(idle2) s")
            // A client that keeps the connection busy is not cut: a pull slower than the timeout.
            #expect(try await Command.run(["curl", "-sf", "--cacert", certificates.ca, "--limit-rate", "100k", "-o", "/dev/null",
                                           "-w", "%{http_code}", "https://localhost:\(port)/openapi.json"]) == "200")
        }
    }
}
