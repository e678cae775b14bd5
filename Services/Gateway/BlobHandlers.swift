import Contracts
import Hummingbird
import Registry
import Runtime

/// `GET|HEAD /v2/<name>/blobs/<digest>`, with single byte ranges.
struct BlobHandlers: Sendable {
    let registry: RegistryService

    func get(
        _ request: Request, context: GatewayRequestContext, name: RepositoryName, digest: String, head: Bool
    ) async throws -> Response {
        let digest = try RequestParsing.digest(digest)
        guard let answer = try await self.registry.pull(digest, in: name, redirect: !head) else {
            throw RegistryError(.blobUnknown, "blob \(digest) is not in \(name)", detail: ["digest": digest.description])
        }
        let blob = answer.blob
        var headers: HTTPFields = [
            .contentType: "application/octet-stream",
            .dockerContentDigest: digest.description,
            .eTag: "\"\(digest)\"",
            .acceptRanges: "bytes",
        ]
        let status: HTTPResponse.Status
        let range: ClosedRange<Int64>?
        switch ByteRanges.select(head ? nil : request.headers[.range], size: blob.size) {
        case .whole:
            status = .ok
            range = nil
        case .partial(let selected):
            status = .partialContent
            range = selected
            headers[.contentRange] = "bytes \(selected.lowerBound)-\(selected.upperBound)/\(blob.size)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(blob.size)"
            headers[.contentLength] = "0"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? blob.size
        headers[.contentLength] = String(length)
        if head {
            return Response(status: status, headers: headers)
        }
        if case .redirect(_, let url) = answer {
            // The client fetches the bytes (and its range) from the storage itself.
            return Response(
                status: .temporaryRedirect,
                headers: [.location: url, .dockerContentDigest: digest.description, .contentLength: "0"]
            )
        }
        // The read begins before the headers go out: a storage that cannot be read answers 503.
        let bytes = try await self.registry.open(blob, range: range)
        let eventLoop = context.eventLoop
        let body = ResponseBody(contentLength: Int(length)) { writer in
            var written: Int64 = 0
            try await bytes.forEach { chunk in
                written += Int64(chunk.readableBytes)
                try await writer.write(chunk)
                try await ResponsePacing.caughtUp(eventLoop)
            }
            // A read that ended short must not look like a complete body to the client.
            guard written == length else {
                throw RegistryError(.badGateway, "the storage returned \(written) of \(length) bytes")
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// Unlinks the blob from the repository (202); the bytes stay while other repositories use them.
    func delete(name: RepositoryName, digest: String) async throws -> Response {
        try await self.registry.unlinkBlob(try RequestParsing.digest(digest), from: name)
        return Response(status: .accepted, headers: [.contentLength: "0"])
    }
}
