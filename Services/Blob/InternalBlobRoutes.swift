import Contracts
import Hummingbird
import Runtime

/// The blob service's internal API (`pierone blob`): upload sessions with streamed bodies, and
/// streamed (ranged) reads. Bytes pass through as they arrive, with the back-pressure of the
/// connection; nothing is held whole.
package enum InternalBlobRoutes {
    package static func register<Context: EventLoopAwareContext>(on router: Router<Context>, service: BlobService) {
        let session = RouterPath(InternalBlobPaths.session)
        router.on(InternalBlobPaths.startUpload) { start, _, _ in
            try await service.startUpload(for: start.repository, algorithm: start.algorithm, owner: start.owner)
        }
        router.get(session) { request, context in
            let (id, repository) = try Self.session(request, context)
            return try InternalJSON.response(try await service.uploadStatus(id, for: repository))
        }
        router.patch(session) { request, context in
            let (id, repository) = try Self.session(request, context)
            let offset = try Self.offset(request)
            return try InternalJSON.response(
                try await service.appendUpload(id, for: repository, at: offset, body: request.body)
            )
        }
        // The closing request with its last chunk: append and commit in one call.
        router.put(session) { request, context in
            let (id, repository) = try Self.session(request, context)
            let query = request.uri.queryParameters
            guard let digest = query["digest"].flatMap({ Digest($0) }) else {
                throw RegistryError(.digestInvalid, "digest= is missing or invalid")
            }
            let offset = try Self.offset(request)
            return try InternalJSON.response(
                try await service.commitUpload(id, for: repository, digest: digest, appending: request.body, at: offset)
            )
        }
        router.on(InternalBlobPaths.commit) { commit, _, context in
            guard let id = context.parameters.get("id").flatMap(UploadID.init) else { throw RegistryError(.blobUploadUnknown) }
            return try await service.commitUpload(id, for: commit.repository, digest: commit.digest)
        }
        router.delete(session) { request, context in
            let (id, repository) = try Self.session(request, context)
            try await service.cancelUpload(id, for: repository)
            return try InternalJSON.response(InternalMetadata.Done())
        }
        router.on(InternalBlobPaths.discardAll) { input, _, _ in
            // At most the collector's batch: a caller cannot make one request delete without end.
            guard input.locations.count <= 10_000 else {
                throw RegistryError(.tooLarge, "at most 10000 blobs per call", detail: ["count": "\(input.locations.count)"])
            }
            return InternalMetadata.Locations(locations: try await service.discard(locations: input.locations))
        }
        router.on(InternalBlobPaths.storedBlobs) { listing, _, _ in
            try await service.storedBlobs(after: listing.page.after, limit: listing.page.effectiveLimit)
        }
        router.on(InternalBlobPaths.discard) { blob, _, _ in
            try await service.discard(blob)
            return InternalMetadata.Done()
        }
        router.on(InternalBlobPaths.externalURL) { blob, _, _ in
            InternalBlobPaths.ExternalURL(url: try await service.externalURL(for: blob))
        }
        router.get(RouterPath(InternalBlobPaths.read)) { request, context in
            let eventLoop = context.eventLoop
            let query = request.uri.queryParameters
            guard let location = query["location"].map(String.init), let size = query["size"].flatMap({ Int64($0) }),
                  size >= 0, let digest = query["digest"].flatMap({ Digest($0) })
            else { throw RegistryError(.requestInvalid, "location, size and digest are required") }
            var requested: ClosedRange<Int64>?
            if query["start"] != nil || query["end"] != nil {
                // Checked before any arithmetic: 0 <= start <= end < size.
                guard let start = query["start"].flatMap({ Int64($0) }), let end = query["end"].flatMap({ Int64($0) }),
                      start >= 0, start <= end, end < size
                else { throw RegistryError(.requestInvalid, "start and end must satisfy 0 <= start <= end < size") }
                requested = start...end
            }
            let range = requested
            let blob = BlobRecord(digest: digest, size: size, location: location)
            // Before the answer starts: a refusal must be a 400, not a body cut short.
            try service.checkLocation(blob)
            let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? size
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream"],
                body: ResponseBody(contentLength: Int(length)) { writer in
                    try await service.read(blob, range: range) { chunk in
                        try await writer.write(chunk)
                        try await ResponsePacing.caughtUp(eventLoop)
                    }
                    try await writer.finish(nil)
                }
            )
        }
    }

    /// `offset=`, checked before it reaches any arithmetic; nil when absent.
    private static func offset(_ request: Request) throws(RegistryError) -> Int64? {
        guard let text = request.uri.queryParameters["offset"] else { return nil }
        guard let value = Int64(text), value >= 0 else {
            throw RegistryError(.requestInvalid, "offset must be a non-negative integer")
        }
        return value
    }

    private static func session(_ request: Request, _ context: some RequestContext) throws -> (UploadID, RepositoryName) {
        guard let id = context.parameters.get("id").flatMap(UploadID.init),
              let repository = request.uri.queryParameters["repository"].flatMap(RepositoryName.init)
        else { throw RegistryError(.blobUploadUnknown) }
        return (id, repository)
    }
}
