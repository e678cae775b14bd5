/// What the Pier One REST API (`/teams`, `/tags/<image>`, `/stats`, scm-source) asks of the
/// metadata service, beside the registry calls of `MetadataAPI`.
///
/// A team is the first component of a repository name and an artifact everything after it.
/// Teams and artifacts are listed only while they have at least one tag, as in the original.
package protocol PierOneQueries: Sendable {
    /// Teams with at least one tag, in lexical order.
    func teams(page: PageRequest) async throws -> Page<String>

    /// Artifacts of `team` with at least one tag, in lexical order; an empty page for an unknown team.
    func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String>

    /// Tags of `repository`, oldest first (by when each got its current manifest; `after` is a tag
    /// name); nil when the repository has no tag.
    func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>?

    /// The scm-source of the manifest `tag` names; nil when the tag is unknown or has none.
    func scmSource(of tag: Tag, in repository: RepositoryName) async throws -> ScmSource?

    /// Records where a manifest was built from. A source from a layer never replaces one given by
    /// a trusted pusher's header.
    func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws

    /// Tags whose image id (config digest, or manifest digest without a config) starts with
    /// `prefix` (lowercase hex, optionally after `sha256:`).
    func imageTags(idPrefix prefix: String) async throws -> ImageLookup

    /// Counts and storage of the whole registry.
    func statistics() async throws -> RegistryStatistics

    /// Per-team counts, in team order.
    func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics>

    /// Counts of one team; nil when it has no tag.
    func teamStatistics(team: String) async throws -> TeamStatistics?

    /// Per-artifact counts and storage of a team's tagged artifacts, in artifact order.
    func artifactStatistics(ofTeam team: String, page: PageRequest) async throws -> Page<ArtifactStatistics>
}

/// One tag as the Pier One API shows it.
package struct TagDetail: Sendable, Equatable, Codable {
    package var name: String
    /// When the tag got its current manifest, milliseconds since 1970 UTC (a moved `-SNAPSHOT`
    /// counts as created again, as in the original).
    package var createdMillis: Int64
    /// Who pushed it there.
    package var createdBy: String?
    package var manifestDigest: Digest
    package var mediaType: String
    /// Manifest plus every blob it references (children's totals for an index), in bytes.
    package var totalSize: Int64
    /// The image id: the config digest, or the manifest digest when there is no config.
    package var imageID: Digest
    /// Whether the tag policy keeps this tag from moving.
    package var immutable: Bool
    /// When its manifest was last pulled (recorded in batches, so up to a flush interval late);
    /// nil when never since pulls are recorded.
    package var pulledMillis: Int64?

    package init(
        name: String, createdMillis: Int64, createdBy: String?, manifestDigest: Digest, mediaType: String,
        totalSize: Int64, imageID: Digest, immutable: Bool
    ) {
        self.name = name
        self.createdMillis = createdMillis
        self.createdBy = createdBy
        self.manifestDigest = manifestDigest
        self.mediaType = mediaType
        self.totalSize = totalSize
        self.imageID = imageID
        self.immutable = immutable
    }
}

/// Where an image was built from: the `scm-source.json` of the original.
package struct ScmSource: Sendable, Equatable, Codable {
    /// Where the record came from.
    package enum Origin: String, Sendable, Codable {
        /// The `X-SCM-Source` header of a trusted pusher.
        case header
        /// A `scm-source.json` at the root of a layer.
        case layer
    }

    package var url: String?
    package var revision: String?
    package var author: String?
    package var status: String?
    package var origin: Origin
    /// When it was recorded, milliseconds since 1970 UTC.
    package var createdMillis: Int64

    package init(url: String?, revision: String?, author: String?, status: String?, origin: Origin, createdMillis: Int64) {
        self.url = url
        self.revision = revision
        self.author = author
        self.status = status
        self.origin = origin
        self.createdMillis = createdMillis
    }
}

/// A tag as the Pier One API lists it (`GET /teams/{team}/artifacts/{artifact}/tags`): the
/// original's `name`, `created`, `created_by`, `image`, and what this registry adds. The gateway
/// encodes it and the CLI decodes it; every field but the first two may be absent (no pusher
/// recorded, an older server), so a client reads what it is given.
package struct TagListing: Sendable, Equatable, Codable {
    package var name: String
    package var created: String
    package var createdBy: String?
    package var image: String?
    package var manifestDigest: String?
    package var mediaType: String?
    package var totalSize: Int64?
    package var immutable: Bool?

    package init(
        name: String, created: String, createdBy: String? = nil, image: String? = nil, manifestDigest: String? = nil,
        mediaType: String? = nil, totalSize: Int64? = nil, immutable: Bool? = nil
    ) {
        self.name = name
        self.created = created
        self.createdBy = createdBy
        self.image = image
        self.manifestDigest = manifestDigest
        self.mediaType = mediaType
        self.totalSize = totalSize
        self.immutable = immutable
    }

    enum CodingKeys: String, CodingKey {
        case name, created, image, immutable
        case createdBy = "created_by"
        case manifestDigest = "manifest_digest"
        case mediaType = "media_type"
        case totalSize = "total_size"
    }
}

/// A tag found by image id.
package struct ImageTagReference: Sendable, Equatable, Codable {
    package var name: String
    package var team: String
    package var artifact: String

    package init(name: String, team: String, artifact: String) {
        self.name = name
        self.team = team
        self.artifact = artifact
    }
}

/// The answer of an image id lookup.
package enum ImageLookup: Sendable, Equatable, Codable {
    /// No image id starts with the prefix.
    case none
    /// More than one image id starts with it.
    case ambiguous
    /// Exactly one image; its tags in every repository.
    case tags([ImageTagReference])
}

/// `/stats`.
package struct RegistryStatistics: Sendable, Equatable, Codable {
    package var teams: Int
    package var artifacts: Int
    package var tags: Int
    /// Bytes of every stored blob, each counted once.
    package var storage: Int64

    package init(teams: Int, artifacts: Int, tags: Int, storage: Int64) {
        self.teams = teams
        self.artifacts = artifacts
        self.tags = tags
        self.storage = storage
    }
}

/// `/stats/teams`.
package struct TeamStatistics: Sendable, Equatable, Codable {
    package var team: String
    package var artifacts: Int
    package var tags: Int
    /// Bytes of the blobs linked into the team's repositories, each counted once.
    package var storage: Int64
    /// Those blobs, each counted once.
    package var blobs: Int

    package init(team: String, artifacts: Int, tags: Int, storage: Int64, blobs: Int = 0) {
        self.team = team
        self.artifacts = artifacts
        self.tags = tags
        self.storage = storage
        self.blobs = blobs
    }

    private enum CodingKeys: String, CodingKey { case team, artifacts, tags, storage, blobs }

    /// From a replica that does not count blobs yet: 0.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.team = try container.decode(String.self, forKey: .team)
        self.artifacts = try container.decode(Int.self, forKey: .artifacts)
        self.tags = try container.decode(Int.self, forKey: .tags)
        self.storage = try container.decode(Int64.self, forKey: .storage)
        self.blobs = try container.decodeIfPresent(Int.self, forKey: .blobs) ?? 0
    }
}

/// One artifact of a team: its tags, the bytes and number of its blobs (each once), its last push.
package struct ArtifactStatistics: Sendable, Equatable, Codable {
    package var artifact: String
    package var tags: Int
    package var storage: Int64
    package var blobs: Int
    /// When a tag of it last got a manifest (ms since 1970).
    package var lastPushMillis: Int64

    package init(artifact: String, tags: Int, storage: Int64, blobs: Int, lastPushMillis: Int64) {
        self.artifact = artifact
        self.tags = tags
        self.storage = storage
        self.blobs = blobs
        self.lastPushMillis = lastPushMillis
    }
}
