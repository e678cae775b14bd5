import Contracts
import Foundation
import NIOCore
import Runtime
import Testing
import TestSupport

/// The three services as separate processes: PostgreSQL, one metadata, two blob and two gateway
/// processes on loopback with certificates from `scripts/dev-certs`.
@Suite(.serialized) struct SplitModeTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    final class Stack: @unchecked Sendable {
        let scratch: URL
        let certificates: URL
        var processes: [String: ServiceProcess] = [:]
        /// Allocated after PostgreSQL started, so its port cannot be among them.
        var ports: [Int] = []
        var metadataPort: Int { self.ports[0] }
        var blobPorts: [Int] { [self.ports[1], self.ports[2]] }
        var gatewayPorts: [Int] { [self.ports[3], self.ports[4]] }
        /// Metadata processes: with 2, gateway 1 calls the second (both on the same database).
        var metadataReplicas = 1
        func metadataPort(ofGateway index: Int) -> Int { index % self.metadataReplicas == 0 ? self.ports[0] : self.ports[5] }
        var databaseURL = ""
        /// Extra settings of the blob processes (S3 storage).
        var blobEnvironment: [String: String] = [:]
        /// Extra settings of the metadata process (the garbage collector's).
        var metadataEnvironment: [String: String] = [:]
        /// The PostgreSQL cluster to use; nil for the one the test process shares.
        var cluster: PostgresCluster?

        init() throws {
            self.scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-split-\(UUID())")
            self.certificates = self.scratch.appendingPathComponent("certs")
            try FileManager.default.createDirectory(at: self.scratch, withIntermediateDirectories: true)
        }

        func tls(_ service: String) -> [String: String] {
            [
                "INTERNAL_TLS_CA": self.certificates.appendingPathComponent("ca.crt").path,
                "INTERNAL_TLS_CERT": self.certificates.appendingPathComponent("\(service).crt").path,
                "INTERNAL_TLS_KEY": self.certificates.appendingPathComponent("\(service).key").path,
            ]
        }

        func startMetadata(_ index: Int = 0) throws {
            self.processes[index == 0 ? "metadata" : "metadata\(index)"] = try ServiceProcess(
                "metadata\(index)-\(UUID().uuidString.prefix(4))", arguments: ["metadata"],
                environment: self.tls("metadata").merging([
                    "METADATA_PORT": String(index == 0 ? self.metadataPort : self.ports[5]), "DATABASE_URL": self.databaseURL,
                    "HTTP_BIND_ADDRESS": "127.0.0.1", "MUTABLE_TAGS": "*-SNAPSHOT",
                    "LOG_FORMAT": "json", "LOG_LEVEL": "debug",
                ]) { $1 }.merging(self.metadataEnvironment) { $1 },
                logDirectory: self.scratch
            )
        }

        func startGateway(_ index: Int) throws {
            self.processes["gateway\(index)"] = try ServiceProcess(
                "gateway\(index)-\(UUID().uuidString.prefix(4))", arguments: ["gateway"],
                environment: self.tls("gateway").merging([
                    "HTTP_PORT": String(self.gatewayPorts[index]), "HTTP_BIND_ADDRESS": "127.0.0.1",
                    "METADATA_URL": "https://localhost:\(self.metadataPort(ofGateway: index))",
                    "BLOB_URL": "https://localhost:\(self.blobPorts[index])",
                ]) { $1 },
                logDirectory: self.scratch
            )
        }

        func startBlob(_ index: Int) throws {
            self.processes["blob\(index)"] = try ServiceProcess(
                "blob\(index)-\(UUID().uuidString.prefix(4))", arguments: ["blob"],
                environment: self.tls("blob").merging([
                    "BLOB_PORT": String(self.blobPorts[index]), "HTTP_BIND_ADDRESS": "127.0.0.1",
                    "STORAGE_DIRECTORY": self.scratch.appendingPathComponent("blobs").path,
                ]) { $1 }.merging(self.blobEnvironment) { $1 },
                logDirectory: self.scratch
            )
        }

        /// Starts every process; with `collector`, the metadata service's garbage collector deletes
        /// through blob service 0.
        func start(collector: Bool = false) async throws {
            try await Command.run([SplitModeTests.repositoryRoot.appendingPathComponent("scripts/dev-certs").path, self.certificates.path])
            let cluster = if let cluster = self.cluster { cluster } else { try await PostgresCluster.shared() }
            self.databaseURL = try await cluster.makeDatabase()
            self.ports = try PostgresCluster.freePorts(6)
            if collector { self.metadataEnvironment["BLOB_URL"] = "https://localhost:\(self.blobPorts[0])" }
            try self.startMetadata()
            if self.metadataReplicas > 1 { try self.startMetadata(1) }
            try self.startBlob(0)
            try self.startBlob(1)
            for index in 0..<2 {
                try self.startGateway(index)
            }
            for port in self.gatewayPorts {
                try await self.waitReady("http://127.0.0.1:\(port)")
            }
        }

        func waitReady(_ base: String) async throws {
            for _ in 0..<240 {
                if (try? await self.curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", base + HealthPaths.ready])) == "200" {
                    return
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            let logs = self.processes.values.map { "\($0.name): \($0.output)" }.joined(separator: "\n")
            throw PostgresCluster.SetupError("\(base) never became ready:\n\(logs)")
        }

        func gateway(_ index: Int) -> String { "http://127.0.0.1:\(self.gatewayPorts[index])" }
        func host(_ index: Int) -> String { "localhost:\(self.gatewayPorts[index])" }

        @discardableResult
        func curl(_ arguments: [String]) async throws -> String {
            try await Command.run(["curl"] + arguments)
        }

        /// Status and headers of a request with an optional inline body.
        func request(_ method: String, _ url: String, body: String? = nil, headers: [String] = []) async throws
            -> (status: Int, headers: [String: String])
        {
            var arguments = method == "HEAD"
                ? ["-s", "-o", "/dev/null", "-D", "-", "-I", url] : ["-s", "-o", "/dev/null", "-D", "-", "-X", method, url]
            for header in headers { arguments += ["-H", header] }
            if let body { arguments += ["--data-binary", body] }
            let output = try await self.curl(arguments)
            var status = 0
            var fields: [String: String] = [:]
            for line in output.split(whereSeparator: \.isNewline) {
                if line.hasPrefix("HTTP/") { status = Int(line.split(separator: " ")[1]) ?? 0; continue }
                if let colon = line.firstIndex(of: ":") {
                    fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            return (status, fields)
        }

        /// Attack 3 of the hardening issue through both blob replicas (`scripts/race-blob-replicas`):
        /// a stalled append through one, an append and commit through the other. The script fails
        /// when the committed blob does not read back as its digest.
        func raceBlobReplicas() async throws -> [String: Any] {
            let gateway = self.certificates.appendingPathComponent("gateway").path
            let output = try await Command.run([
                SplitModeTests.repositoryRoot.appendingPathComponent("scripts/race-blob-replicas").path,
                "https://localhost:\(self.blobPorts[0])", "https://localhost:\(self.blobPorts[1])",
                "--ca", self.certificates.appendingPathComponent("ca.crt").path, "--cert", gateway + ".crt", "--key", gateway + ".key",
            ])
            return try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        }

        func stop() {
            for process in self.processes.values { process.stop() }
            try? FileManager.default.removeItem(at: self.scratch)
        }
    }

    @Test func splitStack() async throws {
        let stack = try Stack()
        defer { stack.stop() }
        try await stack.start()

        // skopeo pushes through one gateway and pulls through the other.
        try await ClientTests.makeOCILayout(
            at: stack.scratch, content: "split image", files: ["scm-source.json": PierOneAPITests.scm]
        )
        let layout = "oci:\(stack.scratch.appendingPathComponent("layout").path):1.0"
        try await ClientTests.skopeo(["copy", "--dest-tls-verify=false", layout, "docker://\(stack.host(0))/team/app:1.0"])
        let pulled = stack.scratch.appendingPathComponent("pulled")
        try await ClientTests.skopeo(["copy", "--src-tls-verify=false", "docker://\(stack.host(1))/team/app:1.0", "oci:\(pulled.path):x"])

        // The Pier One API through the other gateway: every answer comes over the internal API.
        func json(_ path: String) async throws -> Any? {
            let body = try await stack.curl(["-sf", stack.gateway(1) + path])
            return try JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed])
        }
        #expect(try await json("/teams") as? [String] == ["team"])
        #expect(try await json("/teams/team/artifacts") as? [String] == ["app"])
        let tags = try #require(try await json("/teams/team/artifacts/app/tags") as? [[String: Any]])
        #expect(tags.map { $0["name"] as? String } == ["1.0"])
        let image = try #require(tags.first?["image"] as? String)
        #expect(try await json("/tags/\(image.dropFirst(7).prefix(10))") as? [[String: String]] == [
            ["name": "1.0", "team": "team", "artifact": "app"],
        ])
        #expect((try await json("/stats") as? [String: Int])?["tags"] == 1)
        var source: [String: Any]?
        for _ in 0..<100 where source == nil {
            source = try? await json("/teams/team/artifacts/app/tags/1.0/scm-source") as? [String: Any]
            if source == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(source?["revision"] as? String == "cd768599e1bb", "scm-source read from the layer by gateway 0")

        // The garbage administration through a gateway, answered by the metadata service.
        let plan = try #require(try await json("/gc/plan") as? [String: Any])
        #expect(plan["candidates"] is [Any] && plan["gracePeriodSeconds"] as? Int == 86400, "\(plan)")
        let unknown = String(repeating: "0", count: 64)
        let why = try #require(try await json("/gc/why/sha256:\(unknown)") as? [String: Any])
        #expect((why["verdict"] as? String)?.hasPrefix("unknown") == true, "\(why)")
        let run = try await stack.curl(["-sf", "-X", "POST", "-H", "X-PierOne-Command: test", stack.gateway(0) + "/gc/run"])
        #expect(run.contains("\"reviewed\""), "\(run)")
        // The command itself (the built binary), against a gateway.
        let printed = try await Command.run([ServiceProcess.executable.path, "gc", "--dry-run", "--url", stack.gateway(1)])
        #expect(printed.contains("Garbage collection (grace period 1d 0h"), "\(printed)")
        let explained = try await Command.run(
            [ServiceProcess.executable.path, "gc", "why", "sha256:\(unknown)", "--url", stack.gateway(1), "--json"]
        )
        #expect(explained.contains("\"verdict\" : \"unknown"), "\(explained)")

        // A chunked upload whose requests alternate between the gateways (and so the blob replicas).
        let chunks = ["first chunk ", "second chunk ", "third chunk"]
        let digest = DigestHasher.digest(of: ByteBuffer(string: chunks.joined()))
        let start = try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/")
        #expect(start.status == 202)
        var location = try #require(start.headers["location"])
        var offset = 0
        for (index, chunk) in chunks.enumerated() {
            let gateway = stack.gateway((index + 1) % 2)
            let patch = try await stack.request(
                "PATCH", gateway + location, body: chunk,
                headers: ["Content-Range: \(offset)-\(offset + chunk.utf8.count - 1)", "Content-Type: application/octet-stream"]
            )
            #expect(patch.status == 202, "chunk \(index)")
            location = patch.headers["location"] ?? location
            offset += chunk.utf8.count
        }
        let put = try await stack.request("PUT", stack.gateway(0) + location + "?digest=\(digest)")
        #expect(put.status == 201)
        let read = try await stack.curl(["-s", stack.gateway(1) + "/v2/team/app/blobs/\(digest)"])
        #expect(read == chunks.joined())

        // Metadata and blob refuse callers without a certificate from the CA.
        let ca = stack.certificates.appendingPathComponent("ca.crt").path
        for port in [stack.metadataPort, stack.blobPorts[0]] {
            let url = "https://localhost:\(port)\(HealthPaths.live)"
            await #expect(throws: Command.Failure.self) { try await stack.curl(["-sS", "--cacert", ca, url]) }
            let other = stack.scratch.appendingPathComponent("other-ca")
            try await Command.run([SplitModeTests.repositoryRoot.appendingPathComponent("scripts/dev-certs").path, other.path])
            await #expect(throws: Command.Failure.self) {
                try await stack.curl([
                    "-sS", "--cacert", ca, "--cert", other.appendingPathComponent("gateway.crt").path,
                    "--key", other.appendingPathComponent("gateway.key").path, url,
                ])
            }
            let gatewayCert = stack.certificates.appendingPathComponent("gateway")
            let ok = try await stack.curl([
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, "--cert", gatewayCert.path + ".crt",
                "--key", gatewayCert.path + ".key", url,
            ])
            #expect(ok == "200")
        }

        // A write racing a commit through the other replica never reaches the committed blob; the
        // internal API reads nothing outside the storage.
        let race = try await stack.raceBlobReplicas()
        #expect(race["committedBlobMatchesItsDigest"] as? Bool == true, "\(race)")
        #expect(race["traversalRead"] as? Int == 400, "\(race)")

        // A request id given to the gateway is answered and logged by the metadata service (JSON logs).
        let traced = try await stack.request("GET", stack.gateway(1) + "/teams", headers: ["X-Request-Id: trace-split-1"])
        #expect(traced.headers["x-request-id"] == "trace-split-1")
        let generated = try await stack.request("GET", stack.gateway(1) + "/teams")
        #expect(UUID(uuidString: generated.headers["x-request-id"] ?? "") != nil)
        let metadataLog = try #require(stack.processes["metadata"]).output
        let logLines = metadataLog.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(logLines.count == metadataLog.split(separator: "\n").count, "every metadata log line is JSON")
        #expect(logLines.contains { $0["request_id"] as? String == "trace-split-1" && $0["path"] as? String == InternalMetadataCalls.teams.path })

        // Every service exposes its own metrics (metadata and blob to holders of a CA certificate).
        let gatewayCert = stack.certificates.appendingPathComponent("gateway")
        let tlsClient = ["--cacert", ca, "--cert", gatewayCert.path + ".crt", "--key", gatewayCert.path + ".key"]
        let gatewayMetrics = try Exposition(try await stack.curl(["-sf", stack.gateway(0) + "/metrics"]))
        #expect(gatewayMetrics.sum("pierone_http_requests_total", ["service": "gateway", "route": "/v2/{name}/manifests/{reference}"]) >= 1)
        #expect(gatewayMetrics.sum("pierone_http_request_bytes_total", ["route": "/v2/{name}/blobs/uploads/{uuid}"]) > 0)
        let metadataMetrics = try Exposition(
            try await stack.curl(["-sf"] + tlsClient + ["https://localhost:\(stack.metadataPort)/metrics"])
        )
        #expect(metadataMetrics.sum("pierone_http_requests_total", ["service": "metadata", "route": InternalMetadataCalls.putManifest.path]) >= 1)
        #expect(metadataMetrics.values("pierone_database_pool_size", ["backend": "postgres"]).first ?? 0 > 0)
        #expect(metadataMetrics.sum("pierone_database_operation_duration_seconds_count", ["operation": "putManifest"]) >= 1)
        let blobMetrics = try Exposition(
            try await stack.curl(["-sf"] + tlsClient + ["https://localhost:\(stack.blobPorts[0])/metrics"])
        )
        #expect(blobMetrics.sum("pierone_http_requests_total", ["service": "blob", "route": "/internal/blob/uploads/{id}"]) >= 1)
        #expect(blobMetrics.sum("pierone_storage_operation_duration_seconds_count", ["driver": "filesystem"]) >= 1)
        #expect(blobMetrics.values("pierone_upload_sessions_open").count == 1)

        // Internal calls, counted from the services' own metrics: a monolithic push (POST, then PUT
        // with the body) costs three (start, append + commit, link; it was five), a blob GET of
        // that small blob none once the gateway's caches hold the lookup and the bytes (the storage
        // said once that it does not redirect). The cache's own polls of the change log are not
        // counted, nor the pull recorder's flushes (on a timer, of the pulls earlier in this test).
        func internalCalls() async throws -> Double {
            var total = 0.0
            for port in [stack.metadataPort, stack.blobPorts[0]] {
                let text = try await stack.curl(["-sf"] + tlsClient + ["https://localhost:\(port)/metrics"])
                for line in text.split(separator: "\n") where line.hasPrefix("pierone_http_requests_total{") && line.contains("route=\"/internal/")
                    && !line.contains("route=\"/internal/metadata/changes\"") && !line.contains("route=\"/internal/metadata/record-pulls\"")
                {
                    total += Double(line.split(separator: " ").last ?? "0") ?? 0
                }
            }
            return total
        }
        let monolithic = "monolithic \(UUID())"
        let monolithicDigest = DigestHasher.digest(of: ByteBuffer(string: monolithic))
        let beforePush = try await internalCalls()
        let opened = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/").headers["location"])
        #expect(try await stack.request("PUT", stack.gateway(0) + opened + "?digest=\(monolithicDigest)", body: monolithic).status == 201)
        let afterPush = try await internalCalls()
        #expect(afterPush - beforePush == 3, "internal calls of a monolithic push")
        // The gateway asks whether the storage redirects on its first GET only.
        #expect(try await stack.curl(["-sf", stack.gateway(0) + "/v2/team/app/blobs/\(monolithicDigest)"]) == monolithic)
        let afterFirstPull = try await internalCalls()
        #expect(afterFirstPull - afterPush <= 3, "internal calls of a gateway's first blob GET")
        #expect(try await stack.curl(["-sf", stack.gateway(0) + "/v2/team/app/blobs/\(monolithicDigest)"]) == monolithic)
        #expect(try await internalCalls() - afterFirstPull == 0, "internal calls of a blob GET answered from the caches")
        let blobCacheHits = try Exposition(try await stack.curl(["-sf", stack.gateway(0) + "/metrics"]))
            .sum("pierone_blob_cache_hits_total", [:])
        #expect(blobCacheHits >= 2, "both GETs of the pushed blob came from gateway 0's memory")

        // Killing the blob service in the middle of an upload leaves nothing visible; the retry works.
        let large = stack.scratch.appendingPathComponent("large.bin")
        try await Command.run(["sh", "-c", "head -c 64M /dev/urandom > \(large.path)"])
        let largeDigest = "sha256:" + (try await Command.run(["sh", "-c", "sha256sum \(large.path) | cut -d' ' -f1"]))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let session = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/").headers["location"])
        async let interrupted = stack.curl([
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "--limit-rate", "8M",
            "-T", large.path, stack.gateway(0) + session,
        ])
        try await Task.sleep(for: .seconds(2))
        stack.processes["blob0"]?.kill()
        let status = (try? await interrupted) ?? "failed"
        #expect(status != "202")
        #expect(try await stack.request("HEAD", stack.gateway(1) + "/v2/team/app/blobs/\(largeDigest)").status == 404)
        // With its blob service down, the gateway answers 503 at once instead of hanging.
        let asked = ContinuousClock.now
        let down = try await stack.request("GET", stack.gateway(0) + "/v2/team/app/blobs/\(digest)")
        #expect(down.status == 503)
        #expect(ContinuousClock.now - asked < .seconds(10))
        // The small blob it holds in memory it still serves: the bytes of a digest never change.
        #expect(try await stack.curl(["-sf", stack.gateway(0) + "/v2/team/app/blobs/\(monolithicDigest)"]) == monolithic)
        try stack.startBlob(0)
        try await stack.waitReady(stack.gateway(0))
        let retry = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/").headers["location"])
        let sent = try await stack.curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "-T", large.path, stack.gateway(0) + retry])
        #expect(sent == "202")
        #expect(try await stack.request("PUT", stack.gateway(0) + retry + "?digest=\(largeDigest)").status == 201)
        #expect(try await stack.request("HEAD", stack.gateway(1) + "/v2/team/app/blobs/\(largeDigest)").status == 200)
        // Large reads take the gateway's own TLS connections to the blob service: whole, and a range.
        let pulledLarge = try await Command.run([
            "sh", "-c", "curl -sf \(stack.gateway(1))/v2/team/app/blobs/\(largeDigest) | sha256sum | cut -d' ' -f1",
        ])
        #expect("sha256:" + pulledLarge.trimmingCharacters(in: .whitespacesAndNewlines) == largeDigest)
        let rangeSums = try await Command.run([
            "sh", "-c",
            "curl -sf -r 1000-20000999 \(stack.gateway(0))/v2/team/app/blobs/\(largeDigest) | sha256sum | cut -d' ' -f1; "
                + "tail -c +1001 \(large.path) | head -c 20000000 | sha256sum | cut -d' ' -f1",
        ]).split(separator: "\n")
        #expect(rangeSums.count == 2 && rangeSums[0] == rangeSums[1])

        // SIGTERM while an upload is in flight: the gateway finishes the request, then exits.
        let slow = try #require(try await stack.request("POST", stack.gateway(1) + "/v2/team/app/blobs/uploads/").headers["location"])
        async let inFlight = stack.curl([
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "--limit-rate", "16M",
            "-T", large.path, stack.gateway(1) + slow,
        ])
        try await Task.sleep(for: .seconds(1))
        let gateway = try #require(stack.processes["gateway1"])
        gateway.stop()
        #expect(try await inFlight == "202")
        for _ in 0..<100 where gateway.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!gateway.isRunning)
    }

    /// The manifest cache across replicas: two gateways, each on its own metadata replica, one
    /// PostgreSQL. A tag moved and a manifest deleted through gateway 0 are seen by gateway 0's
    /// next GET and by gateway 1 within the bound (one second), while gateway 1 answered from
    /// its cache before.
    @Test func cachedManifestsFollowChangesAcrossReplicas() async throws {
        let stack = try Stack()
        defer { stack.stop() }
        stack.metadataReplicas = 2
        try await stack.start()
        let config = #"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
        let configDigest = DigestHasher.digest(of: ByteBuffer(string: config))
        let started = try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/")
        let location = try #require(started.headers["location"])
        let committed = try await stack.request(
            "PUT", stack.gateway(0) + location + (location.contains("?") ? "&" : "?") + "digest=\(configDigest)", body: config,
            headers: ["Content-Type: application/octet-stream"]
        )
        #expect(committed.status == 201)
        func manifest(_ seed: String) -> (body: String, digest: String) {
            let body = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"#
                + #""mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.utf8.count)},"#
                + #""layers":[],"annotations":{"seed":"\#(seed)"}}"#
            return (body, DigestHasher.digest(of: ByteBuffer(string: body)).description)
        }
        let first = manifest("first"), second = manifest("second")
        func put(_ manifest: (body: String, digest: String)) async throws {
            let answer = try await stack.request(
                "PUT", stack.gateway(0) + "/v2/team/app/manifests/1.0-SNAPSHOT", body: manifest.body,
                headers: ["Content-Type: application/vnd.oci.image.manifest.v1+json"]
            )
            #expect(answer.status == 201)
        }
        func served(_ gateway: Int, _ reference: String = "1.0-SNAPSHOT") async throws -> String? {
            let answer = try await stack.request(
                "GET", stack.gateway(gateway) + "/v2/team/app/manifests/" + reference,
                headers: ["Accept: application/vnd.oci.image.manifest.v1+json"]
            )
            return answer.status == 200 ? answer.headers["docker-content-digest"] : nil
        }
        func hits(_ gateway: Int) async throws -> Double {
            let metrics = try await stack.curl(["-sf", stack.gateway(gateway) + "/metrics"])
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("pierone_manifest_cache_hits_total") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        }
        /// Polls gateway 1 until it serves `expected`; then, a bound after `since`, it must serve
        /// nothing else. Returns how long the change took to show.
        func seenOnGateway1(_ expected: String?, _ reference: String = "1.0-SNAPSHOT", since: ContinuousClock.Instant)
            async throws -> Duration
        {
            var seen: Duration?
            while seen == nil, ContinuousClock.now - since < .seconds(3) {
                if try await served(1, reference) == expected { seen = ContinuousClock.now - since }
            }
            try await Task.sleep(until: since + .seconds(1))
            for _ in 0..<5 {
                #expect(try await served(1, reference) == expected, "a bound after the change, gateway 1 still served the old state")
            }
            return try #require(seen)
        }

        try await put(first)
        for _ in 0..<20 { #expect(try await served(1) == first.digest) }
        let before = try await hits(1)
        for _ in 0..<20 { #expect(try await served(1) == first.digest) }
        #expect(try await hits(1) - before >= 15, "gateway 1 answers from its cache")

        // The tag moves through gateway 0.
        try await put(second)
        let moved = ContinuousClock.now
        #expect(try await served(0) == second.digest, "the gateway that moved the tag serves the move at once")
        let moveShown = try await seenOnGateway1(second.digest, since: moved)

        // The manifest is deleted through gateway 0 (its tag with it).
        for _ in 0..<5 { #expect(try await served(1, second.digest) == second.digest) }
        let deleted = try await stack.request("DELETE", stack.gateway(0) + "/v2/team/app/manifests/" + second.digest)
        #expect(deleted.status == 202)
        let deletedAt = ContinuousClock.now
        #expect(try await served(0, second.digest) == nil, "deleted: 404 at once on the same gateway")
        #expect(try await served(0) == nil)
        let deleteShown = try await seenOnGateway1(nil, second.digest, since: deletedAt)
        #expect(try await served(1) == nil)
        print("cache across replicas: tag move shown on the other gateway after \(moveShown), delete after \(deleteShown)")
    }

    /// Both blob replicas on one S3 bucket (moto, signature checks on): skopeo pushes through one
    /// gateway and pulls through the other, and a chunked upload whose requests alternate between
    /// the replicas continues from the session state in the bucket. A blob process with a wrong
    /// secret refuses to start, naming the setting.
    @Test func splitStackWithBlobsInS3() async throws {
        let moto = try await MotoServer.shared()
        let stack = try Stack()
        defer { stack.stop() }
        stack.blobEnvironment = [
            "STORAGE_S3_BUCKET": moto.bucket, "STORAGE_S3_ENDPOINT": moto.endpoint, "STORAGE_S3_PREFIX": "split-\(UUID())",
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": moto.accessKeyID, "AWS_SECRET_ACCESS_KEY": moto.secretAccessKey,
            "STORAGE_S3_PART_SIZE_MB": "5",
        ]
        try await stack.start()

        try await ClientTests.makeOCILayout(at: stack.scratch, content: "split image in S3")
        let layout = "oci:\(stack.scratch.appendingPathComponent("layout").path):1.0"
        try await ClientTests.skopeo(["copy", "--dest-tls-verify=false", layout, "docker://\(stack.host(0))/team/app:1.0"])
        let pulled = stack.scratch.appendingPathComponent("pulled")
        try await ClientTests.skopeo(["copy", "--src-tls-verify=false", "docker://\(stack.host(1))/team/app:1.0", "oci:\(pulled.path):x"])

        // 3 MiB chunks, alternating replicas: parts are filled and sent across requests and replicas.
        let chunk = stack.scratch.appendingPathComponent("chunk.bin")
        try await Command.run(["sh", "-c", "head -c 3145728 /dev/urandom > \(chunk.path)"])
        let whole = stack.scratch.appendingPathComponent("whole.bin")
        try await Command.run(["sh", "-c", "cat \(chunk.path) \(chunk.path) \(chunk.path) \(chunk.path) > \(whole.path)"])
        let digest = "sha256:" + (try await Command.run(["sh", "-c", "sha256sum \(whole.path) | cut -d' ' -f1"]))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var location = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/").headers["location"])
        for index in 0..<4 {
            let offset = index * 3_145_728
            let status = try await stack.curl([
                "-s", "-D", "-", "-o", "/dev/null", "-X", "PATCH", "-H", "Content-Type: application/octet-stream",
                "-H", "Content-Range: \(offset)-\(offset + 3_145_727)", "--data-binary", "@\(chunk.path)",
                stack.gateway(index % 2) + location,
            ])
            #expect(status.contains(" 202"), "chunk \(index)")
            if let next = status.split(whereSeparator: \.isNewline).first(where: { $0.lowercased().hasPrefix("location:") }) {
                location = next.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
            }
        }
        #expect(try await stack.request("PUT", stack.gateway(1) + location + "?digest=\(digest)").status == 201)
        let read = stack.scratch.appendingPathComponent("read.bin")
        try await stack.curl(["-sSf", "-o", read.path, stack.gateway(0) + "/v2/team/app/blobs/\(digest)"])
        #expect(FileManager.default.contentsEqual(atPath: read.path, andPath: whole.path))

        // The race of an append and a commit through the two replicas, on S3.
        let race = try await stack.raceBlobReplicas()
        #expect(race["committedBlobMatchesItsDigest"] as? Bool == true, "\(race)")
        #expect(race["commitThroughSecond"] as? Int == 200, "on S3 the commit wins and the stalled write fails: \(race)")
        #expect((race["stalledThroughFirst"] as? String)?.contains("200") == false, "\(race)")
        #expect(race["traversalRead"] as? Int == 400, "\(race)")

        // A blob replica with a wrong secret stops at start-up and says which setting to fix.
        stack.blobEnvironment["AWS_SECRET_ACCESS_KEY"] = "wrong"
        stack.processes["blob0"]?.stop()
        try stack.startBlob(0)
        let refused = try #require(stack.processes["blob0"])
        for _ in 0..<100 where refused.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!refused.isRunning)
        #expect(refused.output.contains("AWS_SECRET_ACCESS_KEY"))
    }
}
