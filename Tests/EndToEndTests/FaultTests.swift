import Contracts
import Foundation
import NIOCore
import Runtime
import Testing
import TestSupport

/// Processes killed (SIGKILL) and backing servers stopped in the middle of a push: the client's
/// retry — resuming from the session's `Range`, or a new upload — succeeds, nothing partial is
/// ever visible, and every blob served matches its digest.
@Suite(.serialized) struct FaultTests {
    typealias Stack = SplitModeTests.Stack

    /// A 48 MiB file of random bytes and its digest.
    static func largeFile(in directory: URL) async throws -> (path: String, digest: String) {
        let file = directory.appendingPathComponent("large-\(UUID().uuidString.prefix(6)).bin")
        try await Command.run(["sh", "-c", "head -c 48M /dev/urandom > \(file.path)"])
        return (file.path, try await Self.sha256(of: file.path))
    }

    static func sha256(of path: String) async throws -> String {
        "sha256:" + (try await Command.run(["sh", "-c", "sha256sum \(path) | cut -d' ' -f1"])).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The digest of what `url` serves.
    static func servedDigest(_ url: String) async throws -> String {
        "sha256:" + (try await Command.run(["sh", "-c", "curl -sf \(url) | sha256sum | cut -d' ' -f1"]))
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts a slow streamed PATCH of `file` to `url`, kills `victim` after `delay`, and returns
    /// what the client got.
    static func interruptedPatch(
        _ stack: Stack, url: String, file: String, delay: Duration = .seconds(2), kill victim: @escaping () -> Void
    ) async throws -> String {
        async let interrupted = stack.curl([
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "--limit-rate", "8M", "-T", file, url,
        ])
        try await Task.sleep(for: delay)
        victim()
        return (try? await interrupted) ?? "failed"
    }

    /// Resumes an upload from the `Range` the registry reports (`GET` on the session), sends the
    /// rest with `Content-Range`, and closes it with the digest.
    static func resume(_ stack: Stack, gateway: String, session: String, file: String, digest: String) async throws {
        let status = try await stack.request("GET", gateway + session)
        #expect(status.status == 204, "the session survived: \(status)")
        let range = try #require(status.headers["range"])
        // `0-0` is how the protocol says "nothing yet" (it cannot tell one byte from none).
        let offset = range == "0-0" ? 0 : (Int(range.split(separator: "-").last ?? "") ?? -1) + 1
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
        #expect(offset < size, "the interrupted request did not finish")
        let rest = file + ".rest"
        try await Command.run(["sh", "-c", "tail -c +\(offset + 1) \(file) > \(rest)"])
        let patch = try await stack.curl([
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "-H", "Content-Type: application/octet-stream",
            "-H", "Content-Range: \(offset)-\(size - 1)", "-T", rest, gateway + session,
        ])
        #expect(patch == "202")
        #expect(try await stack.request("PUT", gateway + session + "?digest=\(digest)").status == 201)
    }

    /// A manifest PUT whose body arrives slowly, with `victim` killed while it does.
    static func interruptedManifest(_ stack: Stack, url: String, manifest: String, kill victim: @escaping () -> Void)
        async throws -> String
    {
        let file = stack.scratch.appendingPathComponent("manifest-\(UUID().uuidString.prefix(6)).json")
        try manifest.write(to: file, atomically: true, encoding: .utf8)
        async let interrupted = stack.curl([
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--limit-rate", "200",
            "-H", "Content-Type: \(MediaType.ociManifest)", "--data-binary", "@\(file.path)", url,
        ])
        try await Task.sleep(for: .seconds(1))
        victim()
        return (try? await interrupted) ?? "failed"
    }

    /// An image manifest (padded with an annotation so that its slow upload takes a few seconds)
    /// over a config and a layer pushed through `gateway`.
    static func imageManifest(_ stack: Stack, gateway: String, repository: String) async throws -> String {
        var descriptors: [String] = []
        for (content, type) in [("{}", "application/vnd.oci.image.config.v1+json"), ("layer \(UUID())", MediaType.ociLayerGzip)] {
            let digest = DigestHasher.digest(of: ByteBuffer(string: content))
            let put = try await stack.request("POST", gateway + "/v2/\(repository)/blobs/uploads/?digest=\(digest)", body: content)
            #expect(put.status == 201)
            descriptors.append(Manifests.descriptor(type, digest, content.utf8.count))
        }
        return #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(descriptors[0]),"layers":[\#(descriptors[1])],"annotations":{"padding":"\#(String(repeating: "p", count: 1500))"}}"#
    }

    /// The all-in-one registry killed in the middle of a streamed push and of a manifest PUT.
    @Test func serveKilledMidPushAndMidManifest() async throws {
        let stack = try Stack()
        defer { stack.stop() }
        let port = try PostgresCluster.freePort()
        let data = stack.scratch.appendingPathComponent("data")
        func startServe() throws {
            stack.processes["serve"] = try ServiceProcess(
                "serve-\(UUID().uuidString.prefix(4))", arguments: ["serve"],
                environment: ["HTTP_PORT": String(port), "STORAGE_DIRECTORY": data.path], logDirectory: stack.scratch
            )
        }
        try startServe()
        let gateway = "http://127.0.0.1:\(port)"
        try await stack.waitReady(gateway)
        let (file, digest) = try await Self.largeFile(in: stack.scratch)

        let session = try #require(try await stack.request("POST", gateway + "/v2/team/app/blobs/uploads/").headers["location"])
        let status = try await Self.interruptedPatch(stack, url: gateway + session, file: file) { stack.processes["serve"]?.kill() }
        #expect(status != "202")
        try startServe()
        try await stack.waitReady(gateway)
        #expect(try await stack.request("HEAD", gateway + "/v2/team/app/blobs/\(digest)").status == 404)
        try await Self.resume(stack, gateway: gateway, session: session, file: file, digest: digest)
        #expect(try await Self.servedDigest(gateway + "/v2/team/app/blobs/\(digest)") == digest)

        let manifest = try await Self.imageManifest(stack, gateway: gateway, repository: "team/app")
        let manifestDigest = DigestHasher.digest(of: ByteBuffer(string: manifest))
        let put = try await Self.interruptedManifest(stack, url: gateway + "/v2/team/app/manifests/1.0", manifest: manifest) {
            stack.processes["serve"]?.kill()
        }
        #expect(put != "201")
        try startServe()
        try await stack.waitReady(gateway)
        #expect(try await stack.request("HEAD", gateway + "/v2/team/app/manifests/1.0").status == 404)
        #expect(try await stack.request("PUT", gateway + "/v2/team/app/manifests/1.0", body: manifest,
                                        headers: ["Content-Type: \(MediaType.ociManifest)"]).status == 201)
        #expect(try await Self.servedDigest(gateway + "/v2/team/app/manifests/1.0") == manifestDigest.description)
    }

    /// Split mode on PostgreSQL: a gateway killed mid-push (the retry resumes through the other
    /// gateway) and mid-manifest PUT, the metadata service killed mid-push and mid-manifest PUT,
    /// and PostgreSQL stopped mid-push. (The blob service killed mid-push is in
    /// `SplitModeTests.splitStack`; a manifest PUT does not involve it.)
    @Test func splitServicesKilledAndPostgresStopped() async throws {
        let stack = try Stack()
        defer { stack.stop() }
        // A cluster of its own: this test stops it.
        let database = try await PostgresCluster.start()
        stack.cluster = database
        try await stack.start()
        let (file, digest) = try await Self.largeFile(in: stack.scratch)

        // The gateway dies under a streamed PATCH; the client resumes through the other one.
        let session = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/").headers["location"])
        let status = try await Self.interruptedPatch(stack, url: stack.gateway(0) + session, file: file) {
            stack.processes["gateway0"]?.kill()
        }
        #expect(status != "202")
        #expect(try await stack.request("HEAD", stack.gateway(1) + "/v2/team/app/blobs/\(digest)").status == 404)
        try await Self.resume(stack, gateway: stack.gateway(1), session: session, file: file, digest: digest)
        #expect(try await Self.servedDigest(stack.gateway(1) + "/v2/team/app/blobs/\(digest)") == digest)

        // The gateway dies while a manifest PUT's body arrives: nothing visible; the retry through
        // the restarted gateway succeeds.
        try stack.startGateway(0)
        try await stack.waitReady(stack.gateway(0))
        let first = try await Self.imageManifest(stack, gateway: stack.gateway(0), repository: "team/first")
        let cut = try await Self.interruptedManifest(stack, url: stack.gateway(0) + "/v2/team/first/manifests/1.0", manifest: first) {
            stack.processes["gateway0"]?.kill()
        }
        #expect(cut != "201")
        #expect(try await stack.request("HEAD", stack.gateway(1) + "/v2/team/first/manifests/1.0").status == 404)
        try stack.startGateway(0)
        try await stack.waitReady(stack.gateway(0))
        #expect(try await stack.request(
            "PUT", stack.gateway(0) + "/v2/team/first/manifests/1.0", body: first, headers: ["Content-Type: \(MediaType.ociManifest)"]
        ).status == 201)

        // The metadata service dies while a push streams: the bytes keep arriving (metadata is not
        // involved), the closing PUT fails while it is down, and succeeds once it is back.
        let streamed = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/").headers["location"])
        async let streaming = stack.curl([
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "--limit-rate", "16M", "-T", file, stack.gateway(0) + streamed,
        ])
        try await Task.sleep(for: .seconds(1))
        stack.processes["metadata"]?.kill()
        #expect(try await streaming == "202")
        let closing = try await stack.request("PUT", stack.gateway(0) + streamed + "?digest=\(digest)")
        #expect(closing.status >= 500, "\(closing)")
        try stack.startMetadata()
        try await stack.waitReady(stack.gateway(0))
        // The blob service placed the bytes before metadata failed, so that session is over
        // (404 `BLOB_UPLOAD_UNKNOWN` tells the client to start again) and a new upload succeeds.
        #expect(try await stack.request("PUT", stack.gateway(0) + streamed + "?digest=\(digest)").status == 404)
        let again = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/other/blobs/uploads/").headers["location"])
        #expect(try await stack.curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "-T", file, stack.gateway(0) + again]) == "202")
        #expect(try await stack.request("PUT", stack.gateway(0) + again + "?digest=\(digest)").status == 201)
        #expect(try await Self.servedDigest(stack.gateway(0) + "/v2/team/other/blobs/\(digest)") == digest)

        // The metadata service dies while a manifest PUT is in flight: 5xx, nothing visible; the
        // retry after its restart succeeds.
        let manifest = try await Self.imageManifest(stack, gateway: stack.gateway(1), repository: "team/app")
        let put = try await Self.interruptedManifest(stack, url: stack.gateway(1) + "/v2/team/app/manifests/1.0", manifest: manifest) {
            stack.processes["metadata"]?.kill()
        }
        #expect(put != "201")
        try stack.startMetadata()
        try await stack.waitReady(stack.gateway(1))
        #expect(try await stack.request("HEAD", stack.gateway(1) + "/v2/team/app/manifests/1.0").status == 404)
        let retried = try await stack.request(
            "PUT", stack.gateway(1) + "/v2/team/app/manifests/1.0", body: manifest, headers: ["Content-Type: \(MediaType.ociManifest)"]
        )
        #expect(retried.status == 201)

        // PostgreSQL stops in the middle of a push: the commit cannot record the blob (503), no
        // blob is visible, and the client's new upload after the restart succeeds.
        let bytes = "bytes pushed while the database is down \(UUID())"
        let blobDigest = DigestHasher.digest(of: ByteBuffer(string: bytes))
        let pending = try #require(try await stack.request("POST", stack.gateway(1) + "/v2/team/app/blobs/uploads/").headers["location"])
        #expect(try await stack.request("PATCH", stack.gateway(1) + pending, body: bytes).status == 202)
        try await database.stopServer()
        let during = try await stack.request("PUT", stack.gateway(1) + pending + "?digest=\(blobDigest)")
        #expect(during.status == 503 || during.status == 500, "\(during)")
        try await database.startServer()
        try await stack.waitReady(stack.gateway(1))
        #expect(try await stack.request("HEAD", stack.gateway(1) + "/v2/team/app/blobs/\(blobDigest)").status == 404)
        #expect(try await stack.request("POST", stack.gateway(1) + "/v2/team/app/blobs/uploads/?digest=\(blobDigest)", body: bytes).status == 201)
        #expect(try await Self.servedDigest(stack.gateway(1) + "/v2/team/app/blobs/\(blobDigest)") == blobDigest.description)
        stack.stop()
        try await database.stopServer()
    }

    /// The S3 server stops in the middle of a multipart upload: the client gets an error, nothing
    /// is visible, and once S3 is back a new upload succeeds and reads back as its digest.
    @Test func s3StoppedMidMultipart() async throws {
        var moto = try await MotoServer.start(bucket: "faults", checkSignatures: false)
        let port = moto.port
        let stack = try Stack()
        defer {
            stack.stop()
            moto.stop()
        }
        stack.blobEnvironment = [
            "STORAGE_S3_BUCKET": moto.bucket, "STORAGE_S3_ENDPOINT": moto.endpoint, "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": moto.accessKeyID, "AWS_SECRET_ACCESS_KEY": moto.secretAccessKey, "STORAGE_S3_PART_SIZE_MB": "5",
        ]
        try await stack.start()
        let (file, digest) = try await Self.largeFile(in: stack.scratch)
        let session = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/").headers["location"])
        let status = try await Self.interruptedPatch(stack, url: stack.gateway(0) + session, file: file) { moto.stop() }
        #expect(status != "202")
        #expect(try await stack.request("HEAD", stack.gateway(1) + "/v2/team/app/blobs/\(digest)").status == 404)
        // S3 back (moto keeps nothing across a restart: an empty bucket, as after losing the session).
        moto = try await MotoServer.start(bucket: "faults", checkSignatures: false, port: port)
        try await stack.waitReady(stack.gateway(0))
        let retry = try #require(try await stack.request("POST", stack.gateway(0) + "/v2/team/app/blobs/uploads/").headers["location"])
        let sent = try await stack.curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "-T", file, stack.gateway(0) + retry])
        #expect(sent == "202")
        #expect(try await stack.request("PUT", stack.gateway(1) + retry + "?digest=\(digest)").status == 201)
        #expect(try await Self.servedDigest(stack.gateway(1) + "/v2/team/app/blobs/\(digest)") == digest)
    }

    /// Split mode: the metadata service, which runs the garbage collector and deletes bytes
    /// through the blob service, is killed in the middle of a collection and started again:
    /// nothing referenced is lost, and the rest of the garbage is still collected.
    @Test func metadataKilledMidCollection() async throws {
        let stack = try Stack()
        defer { stack.stop() }
        // Long enough for most uploads below to be made before the first is due.
        stack.metadataEnvironment = ["GC_GRACE_PERIOD": "5s"]
        try await stack.start(collector: true)
        let gateway = stack.gateway(0)
        let blobRoot = stack.scratch.appendingPathComponent("blobs/blobs")
        func storedFiles() -> Int {
            guard let walker = FileManager.default.enumerator(atPath: blobRoot.path) else { return 0 }
            var count = 0
            while let path = walker.nextObject() as? String {
                if path.split(separator: "/").count == 3 { count += 1 }
            }
            return count
        }
        // Garbage: uploads no manifest will reference.
        let garbage = 240
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for index in stride(from: worker, to: garbage, by: 4) {
                        let bytes = "garbage \(index) \(UUID())"
                        let digest = DigestHasher.digest(of: ByteBuffer(string: bytes))
                        let location = try #require(try await stack.request("POST", gateway + "/v2/team/app/blobs/uploads/").headers["location"])
                        #expect(try await stack.request("PUT", gateway + location + "?digest=\(digest)", body: bytes).status == 201)
                    }
                }
            }
            try await group.waitForAll()
        }
        // What must survive: an image, pushed now (its manifest references its blobs).
        let manifest = try await Self.imageManifest(stack, gateway: gateway, repository: "team/app")
        #expect(try await stack.request("PUT", gateway + "/v2/team/app/manifests/1.0", body: manifest,
                                        headers: ["Content-Type: \(MediaType.ociManifest)"]).status == 201)
        let document = try JSONSerialization.jsonObject(with: Data(manifest.utf8)) as? [String: Any]
        let descriptors: [Any] = [document?["config"] as Any] + ((document?["layers"] as? [Any]) ?? [])
        let imageDigests = Set(descriptors.compactMap { ($0 as? [String: Any])?["digest"] as? String })
        let kept = imageDigests.count
        // Kill the metadata service once the collection has begun and before it ends (it may
        // have begun while the last uploads were made, on a loaded machine).
        var peak = storedFiles()
        var killedAt: Int?
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let now = storedFiles()
            peak = max(peak, now)
            if now < peak - 10 && now > kept + 10 {
                stack.processes["metadata"]?.kill()
                killedAt = now
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let left = try #require(killedAt, "the collection was not caught in the middle (\(storedFiles()) files)")
        try await Task.sleep(for: .seconds(1))
        #expect(storedFiles() >= kept, "\(left) files when killed")
        try stack.startMetadata()
        try await stack.waitReady(gateway)
        // The image is whole, and the rest of the garbage goes.
        #expect(try await Self.servedDigest(gateway + "/v2/team/app/manifests/1.0") == DigestHasher.digest(of: ByteBuffer(string: manifest)).description)
        let collected = ContinuousClock.now + .seconds(60)
        while storedFiles() > kept, ContinuousClock.now < collected {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(storedFiles() == kept, "garbage left after the restart")
        for digest in imageDigests {
            #expect(try await Self.servedDigest(gateway + "/v2/team/app/blobs/\(digest)") == digest)
        }
    }
}
