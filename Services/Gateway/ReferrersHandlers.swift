import Contracts
import Foundation
import Hummingbird
import Registry

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an OCI image index of the manifests whose
/// `subject` is the digest. Never 404: an unknown digest has an empty list.
struct ReferrersHandlers: Sendable {
    let registry: RegistryService

    private struct Index: Encodable {
        var schemaVersion = 2
        var mediaType = MediaType.ociIndex
        var manifests: [Descriptor]
    }

    func list(_ request: Request, name: RepositoryName, digest: String) async throws -> Response {
        let subject = try RequestParsing.digest(digest)
        let page = try RequestParsing.page(request)
        let artifactType = request.uri.queryParameters["artifactType"].map(String.init)
        let result = page.limit == 0
            ? Page(items: [], hasMore: false)
            : try await self.registry.referrers(of: subject, in: name, artifactType: artifactType, page: page)
        var response = try ListingHandlers.json(Index(manifests: result.items))
        response.headers[.contentType] = MediaType.ociIndex
        if artifactType != nil {
            response.headers[.ociFiltersApplied] = "artifactType"
        }
        if result.hasMore, let last = result.items.last {
            var next = "/v2/\(name)/referrers/\(subject)?n=\(page.effectiveLimit)&last=\(last.digest)"
            if let artifactType {
                next += "&artifactType=\(artifactType.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
            }
            response.headers[.link] = "<\(next)>; rel=\"next\""
        }
        return response
    }
}
