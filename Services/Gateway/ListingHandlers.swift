import Contracts
import Foundation
import Hummingbird
import Registry

/// `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, paginated with `n`, `last` and `Link`.
struct ListingHandlers: Sendable {
    let registry: RegistryService

    func tags(_ request: Request, name: RepositoryName) async throws -> Response {
        struct Body: Encodable {
            var name: String
            var tags: [String]
        }
        let page = try RequestParsing.page(request)
        if page.limit == 0 {
            return try Self.json(Body(name: name.value, tags: []))
        }
        guard let result = try await self.registry.tags(in: name, page: page) else {
            throw RegistryError(.nameUnknown, "repository \(name) is not known to the registry")
        }
        var response = try Self.json(Body(name: name.value, tags: result.items))
        Self.link(&response, path: "/v2/\(name)/tags/list", page: page, result: result)
        return response
    }

    func catalog(_ request: Request) async throws -> Response {
        struct Body: Encodable { var repositories: [String] }
        let page = try RequestParsing.page(request)
        if page.limit == 0 {
            return try Self.json(Body(repositories: []))
        }
        let result = try await self.registry.repositories(page: page)
        var response = try Self.json(Body(repositories: result.items))
        Self.link(&response, path: "/v2/_catalog", page: page, result: result)
        return response
    }

    /// `Link: </v2/…?n=<n>&last=<last item>>; rel="next"` when more entries follow.
    private static func link(_ response: inout Response, path: String, page: PageRequest, result: Page<String>) {
        guard result.hasMore, let last = result.items.last else { return }
        let encoded = last.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? last
        response.headers[.link] = "<\(path)?n=\(page.effectiveLimit)&last=\(encoded)>; rel=\"next\""
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        let data = try encoder.encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json", .contentLength: String(data.count)],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
