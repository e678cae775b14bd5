import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Metadata
import NIOFoundationCompat
import PierOneApp
import Runtime
import Testing
import TestSupport

/// Where the registry under test keeps its metadata.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { self.rawValue }
}

/// Starts the all-in-one registry on a free loopback port over a fresh data directory (and, for
/// PostgreSQL, a fresh database of the test cluster) and hands the test a client for it (and its
/// port, for external clients such as skopeo).
///
/// The default client is HummingbirdTesting's `.live` one: a single HTTP/1.1 connection on which
/// concurrent requests are pipelined, served one after another, each timed from when it was
/// queued. A test whose requests must really run at once passes `.ahc()` (AsyncHTTPClient's pool,
/// a connection per request in flight, redirects followed), as real clients do.
enum RegistryHarness {
    static func withRegistry<Value: Sendable>(
        _ backend: Backend = .sqlite,
        cluster: PostgresCluster? = nil,
        database: String? = nil,
        directory: URL? = nil,
        configure: (inout ServeConfiguration) -> Void = { _ in },
        client setup: TestingSetup = .live,
        _ test: @Sendable (Registry) async throws -> Value
    ) async throws -> Value {
        // A given directory (and database) outlive the registry, for a restart on the same data.
        let owned = directory == nil
        let directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("pierone-e2e-\(UUID())")
        defer { if owned { try? FileManager.default.removeItem(at: directory) } }
        var configuration = ServeConfiguration(port: 0, storageDirectory: directory.path)
        if backend == .postgres {
            let cluster = if let cluster { cluster } else { try await PostgresCluster.shared() }
            let url = if let database { database } else { try await cluster.makeDatabase() }
            // The production DB_TIMEOUT (10 s): with 3 s, a push under the full suite's load on two
            // cores was once refused with 503 while the shared cluster caught up.
            configuration.postgres = try PostgresSettings.from(EnvironmentReader(["DATABASE_URL": url, "DB_MAX_CONNECTIONS": "4"]))
        }
        configure(&configuration)
        var logger = Logger(label: "pierone-test")
        logger.logLevel = .warning
        let app = try await buildApplication(configuration, logger: logger)
        return try await app.test(setup) { client in
            try await test(Registry(client: client, port: client.port ?? 0, directory: directory))
        }
    }
}

/// A running registry under test, with helpers that speak the protocol step by step.
struct Registry: Sendable {
    let client: any TestClientProtocol
    let port: Int
    let directory: URL

    var host: String { "localhost:\(self.port)" }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> TestResponse {
        try await self.client.execute(uri: uri, method: method, headers: headers, body: body)
    }

    /// Pushes `bytes` as a blob with a monolithic POST + PUT and returns its digest.
    @discardableResult
    func pushBlob(_ bytes: ByteBuffer, to repository: String) async throws -> Digest {
        let digest = DigestHasher.digest(of: bytes)
        let start = try await self.request(.post, "/v2/\(repository)/blobs/uploads/")
        #expect(start.status == .accepted)
        let location = try #require(start.headers[.location])
        let put = try await self.request(
            .put, "\(location)?digest=\(digest)", headers: [.contentLength: String(bytes.readableBytes)], body: bytes
        )
        #expect(put.status == .created, "\(String(buffer: put.body))")
        return digest
    }

    /// Pushes an OCI image manifest over the given blobs and returns its bytes and digest.
    @discardableResult
    func pushImage(
        to repository: String, reference: String, config: String = "{}", layers: [String],
        mediaType: String = MediaType.ociManifest, expect status: HTTPResponse.Status = .created
    ) async throws -> (bytes: ByteBuffer, digest: Digest, response: TestResponse) {
        let configDigest = try await self.pushBlob(ByteBuffer(string: config), to: repository)
        var layerDescriptors: [String] = []
        for layer in layers {
            let digest = try await self.pushBlob(ByteBuffer(string: layer), to: repository)
            layerDescriptors.append(Manifests.descriptor(Manifests.layerType(for: mediaType), digest, layer.utf8.count))
        }
        let manifest = Manifests.image(
            mediaType: mediaType,
            config: Manifests.descriptor(Manifests.configType(for: mediaType), configDigest, config.utf8.count),
            layers: layerDescriptors
        )
        let response = try await self.putManifest(manifest, to: repository, reference: reference, mediaType: mediaType)
        #expect(response.status == status, "\(String(buffer: response.body))")
        return (manifest, DigestHasher.digest(of: manifest), response)
    }

    func putManifest(_ bytes: ByteBuffer, to repository: String, reference: String, mediaType: String) async throws
        -> TestResponse
    {
        try await self.request(
            .put, "/v2/\(repository)/manifests/\(reference)",
            headers: [.contentType: mediaType, .contentLength: String(bytes.readableBytes)], body: bytes
        )
    }

    /// The first error code of an OCI error body.
    static func errorCode(_ response: TestResponse) -> String? {
        struct Envelope: Decodable {
            struct Entry: Decodable {
                var code: String
                var message: String
            }
            var errors: [Entry]
        }
        return (try? JSONDecoder().decode(Envelope.self, from: Data(buffer: response.body)))?.errors.first?.code
    }
}

/// Manifest JSON built by hand, so the bytes (and so the digest) are exactly what the test chose.
enum Manifests {
    static func descriptor(_ mediaType: String, _ digest: Digest, _ size: Int, extra: String = "") -> String {
        #"{"mediaType":"\#(mediaType)","digest":"\#(digest)","size":\#(size)\#(extra)}"#
    }

    static func configType(for manifestType: String) -> String {
        manifestType == MediaType.dockerManifest
            ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json"
    }

    static func layerType(for manifestType: String) -> String {
        manifestType == MediaType.dockerManifest
            ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.oci.image.layer.v1.tar+gzip"
    }

    static func image(mediaType: String, config: String, layers: [String], extra: String = "") -> ByteBuffer {
        ByteBuffer(
            string: #"{"schemaVersion":2,"mediaType":"\#(mediaType)","config":\#(config),"layers":[\#(layers.joined(separator: ","))]\#(extra)}"#
        )
    }

    static func index(mediaType: String, manifests: [String]) -> ByteBuffer {
        ByteBuffer(
            string: #"{"schemaVersion":2,"mediaType":"\#(mediaType)","manifests":[\#(manifests.joined(separator: ","))]}"#
        )
    }
}
