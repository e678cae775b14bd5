import Contracts
import Hummingbird
import Registry

/// The blob upload protocol: `POST /v2/<name>/blobs/uploads/` and `GET|PATCH|PUT|DELETE` on the
/// session `Location`. All four push styles of the distribution spec meet here.
struct UploadHandlers: Sendable {
    let registry: RegistryService

    /// Opens a session (202), mounts from another repository (201), or takes the whole blob in
    /// this one request when `?digest=` is given (201).
    func start(_ request: Request, context: GatewayRequestContext, name: RepositoryName) async throws -> Response {
        let query = request.uri.queryParameters
        if let mount = query["mount"], let digest = Digest(mount),
           let source = Self.mountSource(from: query["from"].map(String.init), context: context),
           try await self.registry.mount(digest, into: name, from: source)
        {
            return Self.created(name: name, digest: digest)
        }
        if let digest = query["digest"] {
            let digest = try RequestParsing.digest(digest)
            let session = try await self.registry.startUpload(for: name, algorithm: digest.algorithm, client: context.client)
            return try await self.finish(request, name: name, id: session.id, digest: digest)
        }
        let algorithm: Digest.Algorithm
        if let requested = query["digest-algorithm"] {
            guard let value = Digest.Algorithm(rawValue: String(requested)) else {
                throw RegistryError(
                    .parameterInvalid, "digest algorithm \(requested) is not supported; use sha256 or sha512"
                )
            }
            algorithm = value
        } else {
            algorithm = .sha256
        }
        let session = try await self.registry.startUpload(for: name, algorithm: algorithm, client: context.client)
        return Self.accepted(name: name, session: session)
    }

    /// Where a mount may take the blob from: the `from` repository when the caller may pull it;
    /// without `from`, a repository the caller may pull — any, for callers who may pull everything
    /// (employees, services, authentication off), else one their token grants pull on. Nil makes
    /// the mount a normal upload (202), so knowing a digest never yields its bytes.
    static func mountSource(from: String?, context: GatewayRequestContext) -> RegistryService.MountSource? {
        if let from {
            guard let source = RepositoryName(from), context.mayPull(source) else { return nil }
            return .repositories([source])
        }
        switch context.identity {
        case .unrestricted, .oauth:
            return .anyRepository
        case .token(_, let access):
            let granted = access.filter { $0.type == "repository" && !Set($0.actions).isDisjoint(with: ["pull", "*"]) }
                .compactMap { RepositoryName($0.name) }.filter(context.mayPull)
            return granted.isEmpty ? nil : .repositories(granted)
        case .anonymous, .instance:
            return nil
        }
    }

    func status(name: RepositoryName, id: String) async throws -> Response {
        let session = try await self.registry.uploadStatus(try RequestParsing.uploadID(id), in: name)
        var response = Self.accepted(name: name, session: session)
        response.status = .noContent
        return response
    }

    /// A chunk (`Content-Range`) or the whole stream (no `Content-Range`), appended and hashed as
    /// it arrives.
    func patch(_ request: Request, name: RepositoryName, id: String) async throws -> Response {
        let id = try RequestParsing.uploadID(id)
        let chunk = try Self.chunk(request)
        do {
            let session = try await self.registry.appendUpload(id, in: name, at: chunk.offset, body: chunk.body)
            return Self.accepted(name: name, session: session)
        } catch let error as RegistryError where error.code == .rangeNotSatisfiable {
            return Self.rangeNotSatisfiable(error, name: name, id: id)
        }
    }

    /// Closes the session: appends a last chunk if the PUT carries one, verifies the digest, links
    /// the blob into the repository.
    func put(_ request: Request, name: RepositoryName, id: String) async throws -> Response {
        let id = try RequestParsing.uploadID(id)
        guard let value = request.uri.queryParameters["digest"] else {
            throw RegistryError(.digestInvalid, "the closing PUT needs ?digest=")
        }
        let digest = try RequestParsing.digest(value)
        do {
            return try await self.finish(request, name: name, id: id, digest: digest)
        } catch let error as RegistryError where error.code == .rangeNotSatisfiable {
            return Self.rangeNotSatisfiable(error, name: name, id: id)
        }
    }

    func cancel(name: RepositoryName, id: String) async throws -> Response {
        try await self.registry.cancelUpload(try RequestParsing.uploadID(id), in: name)
        return Response(status: .noContent, headers: [.contentLength: "0"])
    }

    private func finish(_ request: Request, name: RepositoryName, id: UploadID, digest: Digest) async throws
        -> Response
    {
        var request = request
        let chunk = try await Self.hasBody(&request) ? try Self.chunk(request) : nil
        let length = chunk == nil ? nil : request.headers[.contentLength].flatMap { Int64($0) }
        _ = try await self.registry.completeUpload(
            id, in: name, digest: digest, appending: chunk?.body, at: chunk?.offset, length: length
        )
        return Self.created(name: name, digest: digest)
    }

    /// The request's body as a chunk: where it starts (nil without `Content-Range`), and the body,
    /// held to the length its range declares.
    private static func chunk(_ request: Request) throws(RegistryError) -> (offset: Int64?, body: BoundedBody<RequestBody>) {
        let range = try Self.chunkRange(request)
        return (range?.lowerBound, BoundedBody(base: request.body, limit: range.map(Self.length)))
    }

    /// The bytes of an inclusive range; `end - start` cannot overflow (0 <= start <= end), `+ 1`
    /// only for 0-Int64.max, which no body can fill: it is clamped.
    private static func length(_ range: ClosedRange<Int64>) -> Int64 {
        let span = range.upperBound - range.lowerBound
        return span == Int64.max ? Int64.max : span + 1
    }

    /// The `Content-Range` of a chunk; nil when the request streams without one.
    private static func chunkRange(_ request: Request) throws(RegistryError) -> ClosedRange<Int64>? {
        guard let header = request.headers[.contentRange] else { return nil }
        guard let range = ByteRanges.parseChunk(header) else {
            throw RegistryError(.rangeNotSatisfiable, "Content-Range must be <start>-<end>")
        }
        if let text = request.headers[.contentLength] {
            // `end - start` cannot overflow (0 <= start <= end); `+ 1` could, for end = Int64.max.
            guard let length = Int64(text), length >= 1, length - 1 == range.upperBound - range.lowerBound else {
                throw RegistryError(.sizeInvalid, "Content-Range \(header) does not match Content-Length \(text)")
            }
        }
        return range
    }

    /// Whether the request carries a body. HTTP/1.1 says so in its headers; an HTTP/2 request may
    /// stream one with neither `Content-Length` nor `Transfer-Encoding` (Go clients, curl `-T -`),
    /// so then the first bytes decide, and the body handed on starts with them.
    static func hasBody(_ request: inout Request) async throws -> Bool {
        if let length = request.headers[.contentLength] { return length != "0" }
        if request.headers[.transferEncoding] != nil { return true }
        var iterator = request.body.makeAsyncIterator()
        while let first = try await iterator.next() {
            if first.readableBytes > 0 {
                request.body = RequestBody(asyncSequence: PeekedBody(first: first, rest: PeekedBody.Rest(iterator)))
                return true
            }
        }
        return false
    }

    static func accepted(name: RepositoryName, session: UploadStatus) -> Response {
        Response(
            status: .accepted,
            headers: [
                .location: "/v2/\(name)/blobs/uploads/\(session.id)",
                .range: "0-\(max(session.offset - 1, 0))",
                .dockerUploadUUID: session.id.value,
                .contentLength: "0",
            ]
        )
    }

    /// A refused out-of-order chunk still tells the client where the session stands, so it can
    /// resume from `Range` at `Location`.
    static func rangeNotSatisfiable(_ error: RegistryError, name: RepositoryName, id: UploadID) -> Response {
        var response = RegistryErrorRenderer.render(error)
        response.headers[.location] = "/v2/\(name)/blobs/uploads/\(id)"
        response.headers[.dockerUploadUUID] = id.value
        if let offset = error.detail?["offset"].flatMap({ Int64($0) }) {
            response.headers[.range] = "0-\(max(offset - 1, 0))"
        }
        return response
    }

    static func created(name: RepositoryName, digest: Digest) -> Response {
        Response(
            status: .created,
            headers: [
                .location: "/v2/\(name)/blobs/\(digest)",
                .dockerContentDigest: digest.description,
                .contentLength: "0",
            ]
        )
    }
}

/// A request body whose first buffer was read to learn that there is one: that buffer, then the
/// rest of the stream. Iterated once, by the one task serving the request.
struct PeekedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    /// The stream's iterator, moved here after the first read; only the serving task touches it.
    final class Rest: @unchecked Sendable {
        var iterator: RequestBody.AsyncIterator
        init(_ iterator: RequestBody.AsyncIterator) { self.iterator = iterator }
    }

    let first: ByteBuffer
    let rest: Rest

    struct AsyncIterator: AsyncIteratorProtocol {
        var first: ByteBuffer?
        let rest: Rest

        mutating func next() async throws -> ByteBuffer? {
            if let first = self.first {
                self.first = nil
                return first
            }
            return try await self.rest.iterator.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(first: self.first, rest: self.rest) }
}

