import Contracts
import HTTPTypes
import Hummingbird
import Logging
import Registry
import Runtime

/// `GET|HEAD|PUT /v2/<name>/manifests/<reference>`.
struct ManifestHandlers: Sendable {
    let registry: RegistryService

    func get(_ request: Request, name: RepositoryName, reference: String, head: Bool) async throws -> Response {
        let reference = try RequestParsing.reference(reference)
        guard let manifest = try await self.registry.manifest(reference, in: name) else {
            throw RegistryError(.manifestUnknown, "manifest \(reference) is not in \(name)")
        }
        guard Self.accepts(request.headers[values: .accept], manifest.mediaType) else {
            throw RegistryError(
                .manifestUnknown,
                "manifest \(reference) is \(manifest.mediaType), which the Accept header does not list",
                detail: ["mediaType": manifest.mediaType]
            )
        }
        let etag = "\"\(manifest.digest)\""
        var headers: HTTPFields = [
            .contentType: manifest.mediaType,
            .dockerContentDigest: manifest.digest.description,
            .eTag: etag,
            .contentLength: String(manifest.bytes.readableBytes),
        ]
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: {
            let value = $0.trimmingPrefix(" ")
            return value == etag || value == manifest.digest.description || value == "*"
        }) {
            headers[.contentLength] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: head ? .init() : .init(byteBuffer: manifest.bytes))
    }

    func put(_ request: Request, context: GatewayRequestContext, name: RepositoryName, reference: String) async throws
        -> Response
    {
        let reference = try RequestParsing.reference(reference)
        let limit = ManifestDocument.maximumSize
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw Self.tooLarge
        }
        let body = request.body
        let bytes: ByteBuffer
        do {
            bytes = try await body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Self.tooLarge
        }
        let digest: Digest
        var tags: [Tag]
        switch reference {
        case .digest(let expected):
            digest = DigestHasher.digest(of: bytes, algorithm: expected.algorithm)
            guard digest == expected else {
                throw RegistryError(
                    .digestInvalid, "manifest digest is \(digest), not \(expected)",
                    detail: ["expected": expected.description, "actual": digest.description]
                )
            }
            tags = try request.uri.queryParameters[values: "tag"].map { value throws(RegistryError) in
                try RequestParsing.tag(value)
            }
        case .tag(let tag):
            digest = DigestHasher.digest(of: bytes)
            tags = [tag]
        }
        let document = try ManifestDocument.parse(bytes.readableBytesView, contentType: request.headers[.contentType])
        let scmSource = try Self.scmSource(request, identity: context.identity, logger: context.logger)
        try await self.registry.putManifest(
            ManifestPut(
                repository: name, digest: digest, bytes: bytes, document: document, tags: tags,
                pushedBy: context.identity.uid, scmSource: scmSource
            ),
            client: context.client
        )
        var headers: HTTPFields = [
            .location: "/v2/\(name)/manifests/\(digest)",
            .dockerContentDigest: digest.description,
            .contentLength: "0",
        ]
        if let subject = document.subject {
            headers[.ociSubject] = subject.description
        }
        for tag in tags {
            headers.append(.init(name: .ociTag, value: tag.value))
        }
        return Response(status: .created, headers: headers)
    }

    static let scmSourceHeader = HTTPField.Name("X-SCM-Source")!

    /// The `X-SCM-Source` header (`{"url","revision","author","status"}`) of a pusher trusted to give
    /// it (scope `application.write_all_trusted`, or authentication off). Anyone else's is ignored,
    /// as the original did, so a CI job setting it everywhere still pushes.
    static func scmSource(_ request: Request, identity: Identity, logger: Logger) throws(RegistryError) -> ScmSource? {
        guard let header = request.headers[Self.scmSourceHeader] else { return nil }
        switch identity {
        case .unrestricted: break
        case .oauth(let user) where user.scopes.contains(AccessRules.trustedScope): break
        default:
            logger.info("ignoring X-SCM-Source of an untrusted pusher", metadata: ["uid": "\(identity.uid)"])
            return nil
        }
        guard header.utf8.count <= 4096,
              let source = ScmSource.parse(ByteBuffer(string: header), origin: .header)
        else {
            throw RegistryError(
                .manifestInvalid,
                "X-SCM-Source must be a JSON object with string fields url, revision, author, status (at most 4 KiB)"
            )
        }
        return source
    }

    /// By tag: removes the tag. By digest: removes the manifest and every tag on it. 202 either way.
    func delete(name: RepositoryName, reference: String) async throws -> Response {
        switch try RequestParsing.reference(reference) {
        case .tag(let tag): try await self.registry.deleteTag(tag, in: name)
        case .digest(let digest): try await self.registry.deleteManifest(digest, in: name)
        }
        return Response(status: .accepted, headers: [.contentLength: "0"])
    }

    /// Whether a client's `Accept` allows `mediaType`. Without an `Accept` that names a manifest
    /// type (or with a wildcard) everything is acceptable, as clients have always relied on.
    static func accepts(_ accept: [String], _ mediaType: String) -> Bool {
        let types = accept.flatMap { $0.split(separator: ",") }.map { MediaType.essence($0) }
        guard types.contains(where: { MediaType.manifests.contains($0) }) else { return true }
        return types.contains { $0 == mediaType || $0 == "*/*" || $0 == "application/*" }
    }

    private static let tooLarge = RegistryError(
        .tooLarge, "manifest is larger than the \(ManifestDocument.maximumSize / 1024 / 1024) MiB limit",
        detail: ["limit": String(ManifestDocument.maximumSize)]
    )
}
