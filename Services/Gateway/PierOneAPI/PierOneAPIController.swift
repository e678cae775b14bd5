import Contracts
import Foundation
import Hummingbird

/// The Pier One REST API: the original's paths and JSON shapes (`/teams`, `/tags/<image>`,
/// `/stats`, scm-source), for the `pierone` CLI, deployment tooling and the `/ui/` page.
///
/// Listings take `?limit=&after=` and answer a `Link: <…>; rel="next"` header when more follow;
/// the body stays the plain JSON array old clients read. Without `limit` a listing answers
/// everything, as the original did, up to `unpagedLimit` entries (then `Link` again).
struct PierOneAPIController: Sendable {
    let metadata: any MetadataAPI
    let ready: @Sendable () async -> Bool

    /// Entries answered without `limit` before a listing asks the client to follow `Link`.
    static let unpagedLimit = 10_000

    func register(on router: Router<GatewayRequestContext>) {
        router.get("/teams") { request, _ in try await self.respond(request) }
        router.get("/teams/**") { request, _ in try await self.respond(request) }
        router.get("/tags/:prefix") { request, _ in try await self.respond(request) }
        router.get("/stats") { request, _ in try await self.respond(request) }
        router.get("/stats/**") { request, _ in try await self.respond(request) }
        router.get("/.well-known/health") { _, _ in
            let ready = await self.ready()
            return try Self.json(["health": ready ? "OK" : "UNAVAILABLE"], status: ready ? .ok : .serviceUnavailable)
        }
    }

    func respond(_ request: Request) async throws -> Response {
        guard let route = try PierOneRoute(path: request.uri.path) else {
            throw RegistryError(.routeUnknown, "no such Pier One API resource")
        }
        switch route {
        case .teams:
            let prefix = try RequestParsing.namePrefix(request.uri.queryParameters["prefix"], allowingSlash: false, uppercase: false)
            return try await self.list(request, path: "/teams", linkQuery: Self.query("prefix", prefix)) { page in
                var page = page
                page.prefix = prefix
                return try await self.metadata.teams(page: page)
            }
        case .artifacts(let team):
            let prefix = try RequestParsing.namePrefix(request.uri.queryParameters["prefix"], allowingSlash: true, uppercase: false)
            return try await self.list(
                request, path: "/teams/\(team)/artifacts", linkQuery: Self.query("prefix", prefix),
                notFound: prefix == nil ? Self.unknownTeam(team) : nil
            ) { page in
                var page = page
                page.prefix = prefix
                return try await self.metadata.artifacts(ofTeam: team, page: page)
            }
        case .tags(let name):
            return try await self.tags(request, name: name)
        case .scmSource(let name, let tag):
            guard let source = try await self.metadata.scmSource(of: tag, in: name) else {
                throw RegistryError(.manifestUnknown, "\(name):\(tag) is unknown or has no scm-source", detail: ["tag": tag.value])
            }
            return try Self.json(ScmSourceBody(source))
        case .imageTags(let prefix):
            return try await self.imageTags(prefix: prefix)
        case .statistics:
            let stats = try await self.metadata.statistics()
            // `RegistryStatistics` encodes as the original's `/stats` body.
            return try Self.json(stats)
        case .teamStatistics:
            return try await self.list(request, path: "/stats/teams", key: \.team) {
                try await self.metadata.teamStatistics(page: $0)
            } render: { TeamStatisticsEntry($0) }
        case .oneTeamStatistics(let team):
            guard let stats = try await self.metadata.teamStatistics(team: team) else { throw Self.unknownTeam(team) }
            return try Self.json(TeamStatisticsBody(stats))
        case .artifactStatistics(let team):
            return try await self.list(
                request, path: "/stats/teams/\(team)/artifacts", notFound: Self.unknownTeam(team), key: \.artifact
            ) { page in
                try await self.metadata.artifactStatistics(ofTeam: team, page: page)
            } render: { ArtifactStatisticsBody($0) }
        case .garbagePlan, .garbageRun, .garbageWhy:
            // Served by `GarbageAdminController`.
            throw RegistryError(.routeUnknown, "no such Pier One API resource")
        }
    }

    // MARK: Endpoints

    /// `?order=oldest` (the default, as the original listed them) or `?order=newest`.
    private func tags(_ request: Request, name: RepositoryName) async throws -> Response {
        let notFound = RegistryError(.nameUnknown, "\(name) has no tags", detail: ["name": name.value])
        let newestFirst: Bool
        switch request.uri.queryParameters["order"] {
        case nil, "oldest": newestFirst = false
        case "newest": newestFirst = true
        case let other?:
            throw RegistryError(.parameterInvalid, "order is oldest or newest, not \(other)", detail: ["order": String(other)])
        }
        let query = request.uri.queryParameters
        let prefix = try RequestParsing.namePrefix(query["prefix"], allowingSlash: false, uppercase: true)
        if prefix != nil, newestFirst {
            throw RegistryError(.parameterInvalid, "tags found by prefix are listed in name order; leave out order", detail: ["order": "newest"])
        }
        let manifest = try query["digest"].map { text throws(RegistryError) in
            guard let digest = Digest(String(text)) else {
                throw RegistryError(.parameterInvalid, "digest is algorithm:hex, as sha256:…", detail: ["digest": String(text)])
            }
            return digest
        }
        let linkQuery = (newestFirst ? "order=newest&" : "") + Self.query("prefix", prefix) + Self.query("digest", manifest?.description)
        return try await self.list(
            request, path: "/teams/\(name.team)/artifacts/\(name.artifact)/tags", linkQuery: linkQuery, key: \.name
        ) { page in
            var page = page
            page.newestFirst = newestFirst
            page.prefix = prefix
            page.manifest = manifest
            guard let tags = try await self.metadata.tagDetails(in: name, page: page) else { throw notFound }
            return tags
        } render: { TagListing($0) }
    }

    private func imageTags(prefix raw: String) async throws -> Response {
        let prefix = try Self.imagePrefix(raw)
        switch try await self.metadata.imageTags(idPrefix: prefix) {
        case .none:
            throw RegistryError(.manifestUnknown, "no image id starts with \(raw)", detail: ["prefix": raw])
        case .ambiguous:
            throw RegistryError(
                .ambiguous, "more than one image id starts with \(raw); give more digits", detail: ["prefix": raw]
            )
        case .tags(let references):
            return try Self.json(references)
        }
    }

    /// `sha256:` plus lowercase hex: the prefix as stored. Accepts the bare hex `docker images`
    /// shows (any case) and a full `algorithm:hex`.
    static func imagePrefix(_ raw: String) throws(RegistryError) -> String {
        let lowered = raw.lowercased()
        let (algorithm, hex) = lowered.contains(":")
            ? (String(lowered.prefix { $0 != ":" }), String(lowered.drop { $0 != ":" }.dropFirst()))
            : ("sha256", lowered)
        guard ["sha256", "sha512"].contains(algorithm), !hex.isEmpty, hex.count <= 128,
              hex.allSatisfy({ $0.isHexDigit })
        else {
            throw RegistryError(
                .parameterInvalid, "an image id prefix is hexadecimal digits, optionally after sha256:", detail: ["prefix": raw]
            )
        }
        return algorithm + ":" + hex
    }

    /// `name=value&` for the `Link` of a filtered listing; nothing without a value.
    private static func query(_ name: String, _ value: String?) -> String {
        guard let value else { return "" }
        return "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value)&"
    }

    private static func unknownTeam(_ team: String) -> RegistryError {
        RegistryError(.nameUnknown, "team \(team) has no tagged artifacts", detail: ["team": team])
    }

    // MARK: Listings

    /// A listing of names.
    private func list(
        _ request: Request, path: String, linkQuery: String = "", notFound: RegistryError? = nil,
        fetch: @escaping @Sendable (PageRequest) async throws -> Page<String>
    ) async throws -> Response {
        try await self.list(request, path: path, linkQuery: linkQuery, notFound: notFound, key: \.self, fetch: fetch) { $0 }
    }

    /// Pages through `fetch`: one page of `limit` when asked, else up to `unpagedLimit` entries.
    private func list<Item: Sendable & Codable & Equatable, Body: Encodable>(
        _ request: Request, path: String, linkQuery: String = "", notFound: RegistryError? = nil, key: KeyPath<Item, String>,
        fetch: @escaping @Sendable (PageRequest) async throws -> Page<Item>, render: (Item) -> Body
    ) async throws -> Response {
        let query = request.uri.queryParameters
        let limit = try RequestParsing.apiLimit(query["limit"])
        var after = query["after"].map(String.init)
        var items: [Item] = []
        var hasMore = false
        repeat {
            let want = limit ?? min(PageRequest.maximumLimit, Self.unpagedLimit - items.count)
            let page = try await fetch(PageRequest(limit: want, after: after))
            items += page.items
            hasMore = page.hasMore
            after = page.items.last.map { $0[keyPath: key] }
        } while limit == nil && hasMore && items.count < Self.unpagedLimit
        if items.isEmpty, query["after"] == nil, let notFound { throw notFound }
        var response = try Self.json(items.map(render))
        if hasMore, let last = items.last?[keyPath: key] {
            let encoded = last.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? last
            let size = limit ?? PageRequest.maximumLimit
            response.headers[.link] = "<\(path)?\(linkQuery)limit=\(size)&after=\(encoded)>; rel=\"next\""
        }
        return response
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        try ListingHandlers.json(value, status: status)
    }
}

// MARK: JSON shapes

extension TagListing {
    /// What the API answers for a stored tag.
    init(_ detail: TagDetail) {
        self.init(
            name: detail.name, created: Timestamps.iso8601(millis: detail.createdMillis), createdBy: detail.createdBy,
            image: detail.imageID.description, manifestDigest: detail.manifestDigest.description, mediaType: detail.mediaType,
            totalSize: detail.totalSize, immutable: detail.immutable
        )
    }
}

struct ScmSourceBody: Encodable {
    var url: String?
    var revision: String?
    var author: String?
    var status: String?
    var created: String
    var origin: String

    init(_ source: ScmSource) {
        self.url = source.url
        self.revision = source.revision
        self.author = source.author
        self.status = source.status
        self.created = Timestamps.iso8601(millis: source.createdMillis)
        self.origin = source.origin.rawValue
    }
}

struct TeamStatisticsBody: Encodable {
    var artifacts: Int
    var tags: Int
    var storage: Int64
    var blobs: Int

    init(_ stats: TeamStatistics) {
        self.artifacts = stats.artifacts
        self.tags = stats.tags
        self.storage = stats.storage
        self.blobs = stats.blobs
    }
}

/// `/stats/teams/{team}/artifacts` entries.
struct ArtifactStatisticsBody: Encodable {
    var artifact: String
    var tags: Int
    var storage: Int64
    var blobs: Int
    var lastPush: String

    enum CodingKeys: String, CodingKey {
        case artifact, tags, storage, blobs
        case lastPush = "last_push"
    }

    init(_ stats: ArtifactStatistics) {
        self.artifact = stats.artifact
        self.tags = stats.tags
        self.storage = stats.storage
        self.blobs = stats.blobs
        self.lastPush = Timestamps.iso8601(millis: stats.lastPushMillis)
    }
}

/// `/stats/teams` entries: `{"team": …, "stats": {…}}` as the original.
struct TeamStatisticsEntry: Encodable {
    var team: String
    var stats: TeamStatisticsBody

    init(_ stats: TeamStatistics) {
        self.team = stats.team
        self.stats = TeamStatisticsBody(stats)
    }
}
