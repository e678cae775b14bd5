import AsyncHTTPClient
import Contracts
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Runtime
import Synchronization

/// The S3 REST calls the blob service needs, signed with Signature V4, path-style addressing
/// (`<endpoint>/<bucket>/<key>`, what MinIO, Ceph and moto expect; AWS accepts it too).
///
/// Object bodies stream; multipart parts carry their length and `UNSIGNED-PAYLOAD` so a part is
/// never hashed twice (the registry verifies the blob digest itself). The registry's keys are
/// plain ASCII by construction (`blobs/sha256/…`, `uploads/<uuid>/…`); keys with spaces or
/// non-ASCII characters are encoded per SigV4 but are not exercised against a server yet.
struct S3Client: Sendable {
    let endpoint: String
    let bucket: String
    let signer: AWSSigV4
    let credentials: @Sendable () async throws -> AWSCredentials
    let http: HTTPClient
    /// Large object reads go through connections of their own (`StreamingGet`): the pooled
    /// client's one-buffer response stream cost the blob service twice Distribution's CPU per
    /// pulled byte (docs/performance.md, "Blobs in S3"). Nil only for an endpoint it cannot parse.
    let streams: StreamingGet?
    /// At most this many such connections at once per client (the pooled client's own limit is
    /// 64 too); past them, large reads share the pool.
    let streamSlots = Slots(limit: 64)
    /// Tries per request, for transient failures.
    var attempts = 3

    struct Failure: Error, CustomStringConvertible {
        var status: Int
        var code: String
        var message: String
        var description: String { "S3 \(self.status) \(self.code): \(self.message)" }
    }

    init(endpoint: String, bucket: String, region: String, http: HTTPClient,
         credentials: @escaping @Sendable () async throws -> AWSCredentials) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.bucket = bucket
        self.signer = AWSSigV4(region: region, service: "s3")
        self.credentials = credentials
        self.http = http
        self.streams = try? StreamingGet(url: self.endpoint, tls: nil)
    }

    /// The HTTP client for S3 calls: it fails a request at once when no connection can be made
    /// (async-http-client's default keeps retrying the connection until the request's deadline,
    /// which turns an outage into minutes-long hangs instead of a prompt 503), and connects within
    /// 5 seconds. Lives as long as the process.
    static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// A signed request for `key` (nil: the bucket itself).
    func request(
        _ method: HTTPMethod, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
        payloadHash: String = AWSSigV4.emptyPayloadHash, now: Date = Date()
    ) async throws -> HTTPClientRequest {
        let path = "/" + AWSSigV4.encode(self.bucket) + (key.map { "/" + AWSSigV4.encode($0, keepSlash: true) } ?? "")
        guard let url = URL(string: self.endpoint), let host = url.host else { throw Failure(status: 0, code: "Endpoint", message: self.endpoint) }
        // What async-http-client sends as `Host` (no default port), or the signature would not match.
        let signed = self.signer.signedHeaders(
            method: method.rawValue, host: StreamingGet.authority(host: host, port: url.port, scheme: url.scheme ?? "https"),
            path: path, query: query,
            headers: headers + [("x-amz-content-sha256", payloadHash)], payloadHash: payloadHash,
            credentials: try await self.credentials(), now: now
        )
        let queryString = query.map { AWSSigV4.encode($0.0) + ($0.1.isEmpty && $0.0 == "uploads" ? "" : "=" + AWSSigV4.encode($0.1)) }
            .joined(separator: "&")
        var request = HTTPClientRequest(url: self.endpoint + path + (queryString.isEmpty ? "" : "?" + queryString))
        request.method = method
        for (name, value) in signed { request.headers.add(name: name, value: value) }
        return request
    }

    /// Sends `request`; a non-2xx answer becomes a `Failure` with S3's error code. Server errors,
    /// throttling and connection failures are retried (every request here is idempotent and its
    /// body, when it has one, is in memory), up to `attempts` times with growing pauses.
    func execute(_ request: HTTPClientRequest, timeout: TimeAmount = .seconds(60)) async throws -> HTTPClientResponse {
        var attempt = 1
        while true {
            do {
                let response = try await self.http.execute(request, timeout: timeout)
                guard (200..<300).contains(response.status.code) else {
                    let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
                    throw Failure(status: Int(response.status.code), code: Self.element("Code", in: body) ?? "",
                                  message: Self.element("Message", in: body) ?? body)
                }
                return response
            } catch {
                guard attempt < self.attempts, Self.isTransient(error) else { throw error }
                try await Task.sleep(for: .milliseconds(100 << (2 * attempt)))
                attempt += 1
            }
        }
    }

    /// Throttling, server errors and failed connections: worth another try, and a 503 to the client
    /// when they persist.
    static func isTransient(_ error: any Error) -> Bool {
        if let failure = error as? Failure {
            return failure.status >= 500 || failure.status == 429 || failure.code == "SlowDown"
                || failure.code == "RequestTimeout"
        }
        return error is HTTPClientError || error is ChannelError || error is IOError
            || error is NIOConnectionError
    }

    func headBucket() async throws {
        _ = try await self.execute(try await self.request(.HEAD, key: nil))
    }

    /// Stores `bytes` at `key`; returns the new object's ETag.
    /// With `ifMatch`, only while the object still has that ETag (S3 answers 412, or 404 when it is
    /// gone, or 409 for a conflicting concurrent write): the compare-and-swap that session writes use.
    @discardableResult
    func putObject(_ key: String, _ bytes: ByteBuffer, ifMatch: String? = nil) async throws -> String {
        var request = try await self.request(
            .PUT, key: key, headers: ifMatch.map { [("if-match", $0)] } ?? [],
            payloadHash: Self.hex(SHA256.hash(data: Data(bytes.readableBytesView)))
        )
        request.body = .bytes(bytes)
        let response = try await self.execute(request)
        return response.headers.first(name: "ETag") ?? ""
    }

    /// Whether the server refuses a `PutObject` whose `If-Match` names another ETag (412), as the
    /// session compare-and-swap needs (docs/storage.md). Checked once at start on `probe`, a key of
    /// the caller's own, which is removed afterwards.
    func honoursConditionalWrites(probe key: String) async throws -> Bool {
        try await self.putObject(key, ByteBuffer(string: "probe"))
        let honoured: Bool
        do {
            try await self.putObject(key, ByteBuffer(string: "replaced"), ifMatch: "\"00000000000000000000000000000000\"")
            honoured = false
        } catch let failure as Failure where [404, 409, 412].contains(failure.status) {
            honoured = true
        }
        try? await self.deleteObject(key)
        return honoured
    }

    /// The object's size and ETag, or nil when there is none.
    func headObject(_ key: String) async throws -> (size: Int64, etag: String)? {
        do {
            let response = try await self.execute(try await self.request(.HEAD, key: key))
            return (Int64(response.headers.first(name: "Content-Length") ?? "") ?? 0, response.headers.first(name: "ETag") ?? "")
        } catch let failure as Failure where failure.status == 404 {
            return nil
        }
    }

    /// Every key under `prefix` with its last modification, following continuation tokens.
    func listObjects(prefix: String) async throws -> [(key: String, lastModified: String)] {
        var result: [(key: String, lastModified: String)] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let response = try await self.execute(try await self.request(.GET, key: nil, query: query))
            let body = String(buffer: try await response.body.collect(upTo: 64 << 20))
            for entry in body.components(separatedBy: "<Contents>").dropFirst() {
                guard let key = Self.element("Key", in: entry) else { continue }
                result.append((Self.unescapeXML(key), Self.element("LastModified", in: entry) ?? ""))
            }
            token = Self.element("IsTruncated", in: body) == "true" ? Self.element("NextContinuationToken", in: body) : nil
        } while token != nil
        return result
    }

    /// One page of `ListObjectsV2` under `prefix` after `startAfter`: keys, sizes, modification times.
    func listObjectsPage(prefix: String, startAfter: String?, maxKeys: Int) async throws
        -> (objects: [(key: String, size: Int64, modifiedMillis: Int64)], truncated: Bool)
    {
        var query = [("list-type", "2"), ("max-keys", String(maxKeys)), ("prefix", prefix)]
        if let startAfter { query.append(("start-after", startAfter)) }
        let response = try await self.execute(try await self.request(.GET, key: nil, query: query))
        let body = String(buffer: try await response.body.collect(upTo: 64 << 20))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        let objects = body.components(separatedBy: "<Contents>").dropFirst().compactMap { entry -> (String, Int64, Int64)? in
            guard let key = Self.element("Key", in: entry) else { return nil }
            let stamp = Self.element("LastModified", in: entry) ?? ""
            // An unreadable time counts as now: never old enough to be an orphan.
            let date = formatter.date(from: stamp) ?? plain.date(from: stamp) ?? Date()
            return (Self.unescapeXML(key), Int64(Self.element("Size", in: entry) ?? "") ?? 0, Int64(date.timeIntervalSince1970 * 1000))
        }
        return (objects.map { (key: $0.0, size: $0.1, modifiedMillis: $0.2) }, Self.element("IsTruncated", in: body) == "true")
    }

    /// A URL that lets its holder GET `key` without credentials for `expires` seconds.
    func presignedGet(_ key: String, expires: Int, now: Date = Date()) async throws -> String {
        let path = "/" + AWSSigV4.encode(self.bucket) + "/" + AWSSigV4.encode(key, keepSlash: true)
        guard let url = URL(string: self.endpoint), let host = url.host else {
            throw Failure(status: 0, code: "Endpoint", message: self.endpoint)
        }
        let query = self.signer.presignedQuery(
            method: "GET", path: path, host: host + (url.port.map { ":\($0)" } ?? ""), expires: expires,
            credentials: try await self.credentials(), amzDate: AWSSigV4.amzDate(now)
        )
        return self.endpoint + path + "?" + query.map { AWSSigV4.encode($0.0) + "=" + AWSSigV4.encode($0.1) }
            .joined(separator: "&")
    }

    /// Bytes of an object read gathered before each hand-off to the reader.
    static let readBatch = 256 << 10

    /// The object's bytes (or the inclusive `range` of them), streamed to `sink`.
    /// With `ifMatch`, S3 answers 412 unless the object still has that ETag.
    /// Returns the object's ETag.
    @discardableResult
    func getObject(
        _ key: String, range: ClosedRange<Int64>? = nil, ifMatch: String? = nil,
        into sink: (ByteBuffer) async throws -> Void
    ) async throws -> String {
        var headers: [(String, String)] = []
        if let range { headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        if let ifMatch { headers.append(("if-match", ifMatch)) }
        // Exactly the range's bytes reach the sink: a server that ignored the range, or a body cut
        // short, fails the read (the reader answered with the range's length).
        let expected = range.flatMap { Self.length(of: $0) }
        if let streams = self.streams, let expected, expected >= StreamingGet.minimumSize, self.streamSlots.take() {
            defer { self.streamSlots.give() }
            return try await self.streamObject(key, headers: headers, expected: expected, through: streams, into: sink)
        }
        let response = try await self.execute(try await self.request(.GET, key: key, headers: headers), timeout: .hours(24))
        // The HTTP client hands over each socket read (often a few KiB): gathered into larger
        // buffers, a pull makes far fewer writes and event-loop hand-offs.
        var batches = Batcher(size: Self.readBatch)
        var counted = ExactLength(expected: expected)
        for try await chunk in response.body {
            if let batch = batches.add(chunk) { try counted.add(batch); try await sink(batch) }
        }
        if let rest = batches.rest() { try counted.add(rest); try await sink(rest) }
        try counted.finish()
        return response.headers.first(name: "ETag") ?? ""
    }

    /// A count of things in use with a ceiling, safe from any task.
    final class Slots: Sendable {
        let limit: Int
        private let used = Mutex(0)

        init(limit: Int) {
            self.limit = limit
        }

        /// Takes one if fewer than `limit` are in use.
        func take() -> Bool {
            self.used.withLock { used in
                guard used < self.limit else { return false }
                used += 1
                return true
            }
        }

        func give() {
            self.used.withLock { $0 -= 1 }
        }

        var inUse: Int { self.used.withLock { $0 } }
    }

    /// The number of bytes in `range`, nil when it does not fit in an `Int64`.
    static func length(of range: ClosedRange<Int64>) -> Int64? {
        let (span, overflow) = range.upperBound.subtractingReportingOverflow(range.lowerBound)
        guard !overflow else { return nil }
        let (length, tooLong) = span.addingReportingOverflow(1)
        return tooLong ? nil : length
    }

    /// Counts what an object read hands on against the length asked for (nil: any).
    struct ExactLength {
        let expected: Int64?
        private(set) var received: Int64 = 0

        init(expected: Int64?) {
            self.expected = expected
        }

        mutating func add(_ batch: ByteBuffer) throws {
            self.received += Int64(batch.readableBytes)
            if let expected, self.received > expected {
                throw Failure(status: 502, code: "IncompleteBody", message: "more than the \(expected) bytes asked for")
            }
        }

        func finish() throws {
            if let expected, self.received != expected {
                throw Failure(status: 502, code: "IncompleteBody", message: "\(self.received) of \(expected) bytes")
            }
        }
    }

    /// `getObject` on a connection of its own. Failures before the first byte reaches `sink`
    /// (no connection, a server error, throttling) are tried again like any request; after it,
    /// the read fails as a whole (the caller has already answered with part of the bytes).
    private func streamObject(
        _ key: String, headers: [(String, String)], expected: Int64, through streams: StreamingGet,
        into sink: (ByteBuffer) async throws -> Void
    ) async throws -> String {
        let path = "/" + AWSSigV4.encode(self.bucket) + "/" + AWSSigV4.encode(key, keepSlash: true)
        var attempt = 1
        while true {
            var started = false
            do {
                let signed = self.signer.signedHeaders(
                    method: "GET", host: streams.authority, path: path, query: [],
                    headers: headers + [("x-amz-content-sha256", AWSSigV4.emptyPayloadHash)],
                    payloadHash: AWSSigV4.emptyPayloadHash, credentials: try await self.credentials()
                )
                var counted = ExactLength(expected: expected)
                let answer = try await streams.get(path, headers: signed, accepted: [200, 206], batchSize: Self.readBatch) { batch in
                    try counted.add(batch)
                    started = true
                    try await sink(batch)
                }
                if let refused = answer.refused {
                    let body = String(buffer: refused)
                    throw Failure(status: Int(answer.head.status.code), code: Self.element("Code", in: body) ?? "",
                                  message: Self.element("Message", in: body) ?? body)
                }
                try counted.finish()
                return answer.head.headers.first(name: "ETag") ?? ""
            } catch {
                let transient = Self.isTransient(error) || error is StreamingGet.ConnectFailure || error is StreamingGet.BrokenAnswer
                guard !started, attempt < self.attempts, transient else {
                    // A cut connection is a 503 to the client, like any unreachable storage.
                    if error is StreamingGet.BrokenAnswer { throw Failure(status: 502, code: "IncompleteBody", message: "\(error)") }
                    if let failed = error as? StreamingGet.ConnectFailure { throw failed.underlying }
                    throw error
                }
                try await Task.sleep(for: .milliseconds(100 << (2 * attempt)))
                attempt += 1
            }
        }
    }

    func deleteObject(_ key: String) async throws {
        _ = try await self.execute(try await self.request(.DELETE, key: key))
    }

    /// Deletes up to 1,000 keys in one `DeleteObjects` call; the keys S3 could not delete, with
    /// its error code (a key already gone counts as deleted).
    func deleteObjects(_ keys: [String]) async throws -> [String: String] {
        precondition(keys.count <= 1000, "DeleteObjects takes at most 1,000 keys")
        guard !keys.isEmpty else { return [:] }
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
                .replacingOccurrences(of: "'", with: "&apos;")
        }
        let xml = "<Delete><Quiet>true</Quiet>" + keys.map { "<Object><Key>\(escape($0))</Key></Object>" }.joined() + "</Delete>"
        let data = Data(xml.utf8)
        var request = try await self.request(
            .POST, key: nil, query: [("delete", "")],
            headers: [("content-md5", Data(Insecure.MD5.hash(data: data)).base64EncodedString())],
            payloadHash: Self.hex(SHA256.hash(data: data))
        )
        request.body = .bytes(ByteBuffer(bytes: data))
        let response = try await self.execute(request)
        let answer = String(buffer: try await response.body.collect(upTo: 16 << 20))
        var failed: [String: String] = [:]
        for entry in answer.components(separatedBy: "<Error>").dropFirst() {
            guard let key = Self.element("Key", in: entry) else { continue }
            failed[Self.unescapeXML(key)] = Self.element("Code", in: entry) ?? "unknown"
        }
        return failed
    }

    func createMultipartUpload(_ key: String) async throws -> String {
        let response = try await self.execute(try await self.request(.POST, key: key, query: [("uploads", "")]))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard let id = Self.element("UploadId", in: body) else { throw Failure(status: 0, code: "UploadId", message: body) }
        return id
    }

    /// Uploads one part of known length; returns its ETag.
    func uploadPart(_ key: String, uploadID: String, number: Int, bytes: ByteBuffer) async throws -> String {
        var request = try await self.request(
            .PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
            headers: [("content-length", String(bytes.readableBytes))], payloadHash: "UNSIGNED-PAYLOAD"
        )
        request.body = .bytes(bytes)
        let response = try await self.execute(request)
        guard let etag = response.headers.first(name: "ETag") else { throw Failure(status: 0, code: "ETag", message: "none") }
        return etag
    }

    func completeMultipartUpload(_ key: String, uploadID: String, parts: [(number: Int, etag: String)]) async throws {
        let xml = "<CompleteMultipartUpload>" + parts.map {
            "<Part><PartNumber>\($0.number)</PartNumber><ETag>\($0.etag)</ETag></Part>"
        }.joined() + "</CompleteMultipartUpload>"
        let body = ByteBuffer(string: xml)
        var request = try await self.request(
            .POST, key: key, query: [("uploadId", uploadID)],
            payloadHash: Self.hex(SHA256.hash(data: Data(xml.utf8)))
        )
        request.body = .bytes(body)
        let response = try await self.execute(request)
        // S3 may answer 200 with an error document when completion fails late.
        let answer = String(buffer: try await response.body.collect(upTo: 1 << 20))
        if answer.contains("<Error>") {
            throw Failure(status: 200, code: Self.element("Code", in: answer) ?? "", message: answer)
        }
    }

    func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        _ = try await self.execute(try await self.request(.DELETE, key: key, query: [("uploadId", uploadID)]))
    }

    /// Keys of the multipart uploads in progress in the bucket.
    func listMultipartUploads(prefix: String = "") async throws -> [String] {
        try await self.multipartUploads(prefix: prefix).map(\.key)
    }

    /// The multipart uploads in progress under `prefix`: key, upload id and when each was initiated.
    func multipartUploads(prefix: String = "") async throws -> [(key: String, uploadID: String, initiated: String)] {
        var result: [(key: String, uploadID: String, initiated: String)] = []
        var markers: (key: String, id: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.id)] }
            let response = try await self.execute(try await self.request(.GET, key: nil, query: query))
            let body = String(buffer: try await response.body.collect(upTo: 16 << 20))
            for entry in body.components(separatedBy: "<Upload>").dropFirst() {
                guard let key = Self.element("Key", in: entry), let id = Self.element("UploadId", in: entry) else { continue }
                result.append((Self.unescapeXML(key), id, Self.element("Initiated", in: entry) ?? ""))
            }
            if Self.element("IsTruncated", in: body) == "true", let key = Self.element("NextKeyMarker", in: body),
               let id = Self.element("NextUploadIdMarker", in: body)
            {
                markers = (Self.unescapeXML(key), id)
            } else {
                markers = nil
            }
        } while markers != nil
        return result
    }

    static func unescapeXML(_ text: String) -> String { AWSXML.unescape(text) }

    /// The text of the first `<name>` element of a small XML answer.
    static func element(_ name: String, in xml: String) -> String? { AWSXML.element(name, in: xml) }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { DigestHasher.hex(bytes) }
}
