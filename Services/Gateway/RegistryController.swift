import Contracts
import Hummingbird
import Registry

/// Dispatches every `/v2/…` request to its handler. The routes of the registry API live here,
/// in one place; the handlers are small and call only the Registry layer.
struct RegistryController: Sendable {
    let manifests: ManifestHandlers
    let blobs: BlobHandlers
    let uploads: UploadHandlers
    let listings: ListingHandlers
    let referrers: ReferrersHandlers

    init(registry: RegistryService) {
        self.manifests = ManifestHandlers(registry: registry)
        self.blobs = BlobHandlers(registry: registry)
        self.uploads = UploadHandlers(registry: registry)
        self.listings = ListingHandlers(registry: registry)
        self.referrers = ReferrersHandlers(registry: registry)
    }

    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete]

    func register(on router: Router<GatewayRequestContext>) {
        for method in Self.methods {
            router.on("/v2", method: method) { request, context in try await self.respond(request, context: context) }
            router.on("/v2/**", method: method) { request, context in try await self.respond(request, context: context) }
        }
    }

    func respond(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard let route = try RegistryRoute(path: request.uri.path) else {
            throw RegistryError(.routeUnknown, "no such registry resource")
        }
        let method = request.method
        let head = method == .head
        switch (route, method) {
        case (.base, .get), (.base, .head):
            return Response(status: .ok, headers: [.contentType: "application/json", .contentLength: "2"],
                            body: head ? .init() : .init(byteBuffer: ByteBuffer(string: "{}")))
        case (.catalog, .get):
            return try await self.listings.catalog(request)
        case (.tags(let name), .get):
            return try await self.listings.tags(request, name: name)
        case (.manifest(let name, let reference), .get), (.manifest(let name, let reference), .head):
            return try await self.manifests.get(request, name: name, reference: reference, head: head)
        case (.manifest(let name, let reference), .put):
            return try await self.manifests.put(request, context: context, name: name, reference: reference)
        case (.manifest(let name, let reference), .delete):
            return try await self.manifests.delete(name: name, reference: reference)
        case (.blob(let name, let digest), .get), (.blob(let name, let digest), .head):
            return try await self.blobs.get(request, context: context, name: name, digest: digest, head: head)
        case (.blob(let name, let digest), .delete):
            return try await self.blobs.delete(name: name, digest: digest)
        case (.referrers(let name, let digest), .get):
            return try await self.referrers.list(request, name: name, digest: digest)
        case (.uploads(let name), .post):
            return try await self.uploads.start(request, context: context, name: name)
        case (.upload(let name, let id), .get):
            return try await self.uploads.status(name: name, id: id)
        case (.upload(let name, let id), .patch):
            return try await self.uploads.patch(request, name: name, id: id)
        case (.upload(let name, let id), .put):
            return try await self.uploads.put(request, name: name, id: id)
        case (.upload(let name, let id), .delete):
            return try await self.uploads.cancel(name: name, id: id)
        default:
            throw RegistryError(.unsupported, "\(method.rawValue) is not supported on this resource")
        }
    }
}
