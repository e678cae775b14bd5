/// The internal HTTP API between the services: paths and the JSON bodies of each call.
///
/// Metadata calls are `POST <path>` with the request struct as JSON, answered with the response
/// as JSON (HTTP/2). Blob byte streams are plain HTTP bodies (see `InternalBlobPaths`). Failures
/// carry a `RegistryError` as JSON with its status.
public enum InternalMetadataPaths {
    public static let prefix = "/internal/metadata"
    public static let blob = prefix + "/blob"
    public static let linkBlob = prefix + "/link-blob"
    public static let putManifest = prefix + "/put-manifest"
    public static let manifest = prefix + "/manifest"
    public static let tags = prefix + "/tags"
    public static let repositories = prefix + "/repositories"
    public static let mountableBlob = prefix + "/mountable-blob"
    public static let deleteTag = prefix + "/delete-tag"
    public static let deleteManifest = prefix + "/delete-manifest"
    public static let unlinkBlob = prefix + "/unlink-blob"
    public static let referrers = prefix + "/referrers"
}

/// Bodies of the metadata calls.
public enum InternalMetadata {
    public struct BlobInRepository: Codable, Sendable {
        public var digest: Digest
        public var repository: RepositoryName
        public init(digest: Digest, repository: RepositoryName) {
            self.digest = digest
            self.repository = repository
        }
    }

    public struct LinkBlob: Codable, Sendable {
        public var blob: BlobRecord
        public var repository: RepositoryName
        public init(blob: BlobRecord, repository: RepositoryName) {
            self.blob = blob
            self.repository = repository
        }
    }

    public struct ManifestQuery: Codable, Sendable {
        public var reference: Reference
        public var repository: RepositoryName
        public init(reference: Reference, repository: RepositoryName) {
            self.reference = reference
            self.repository = repository
        }
    }

    public struct TagInRepository: Codable, Sendable {
        public var tag: Tag
        public var repository: RepositoryName
        public init(tag: Tag, repository: RepositoryName) {
            self.tag = tag
            self.repository = repository
        }
    }

    public struct Listing: Codable, Sendable {
        public var repository: RepositoryName?
        public var page: PageRequest
        public init(repository: RepositoryName?, page: PageRequest) {
            self.repository = repository
            self.page = page
        }
    }

    public struct Digests: Codable, Sendable {
        public var digest: Digest
        public init(digest: Digest) { self.digest = digest }
    }

    public struct ReferrersQuery: Codable, Sendable {
        public var subject: Digest
        public var repository: RepositoryName
        public var artifactType: String?
        public var page: PageRequest
        public init(subject: Digest, repository: RepositoryName, artifactType: String?, page: PageRequest) {
            self.subject = subject
            self.repository = repository
            self.artifactType = artifactType
            self.page = page
        }
    }

    /// An optional answer (JSON has no top-level null in every decoder).
    public struct Maybe<Value: Codable & Sendable>: Codable, Sendable {
        public var value: Value?
        public init(_ value: Value?) { self.value = value }
    }

    /// An answer without content.
    public struct Done: Codable, Sendable {
        public init() {}
    }
}

/// Paths of the blob service. Sessions: `POST uploads` (JSON `StartUpload`), `GET|DELETE
/// uploads/<id>?repository=`, `PATCH uploads/<id>?repository=&offset=` with the bytes as the body,
/// `PUT uploads/<id>?repository=&digest=&offset=` with the last bytes as the body (append + commit),
/// `POST uploads/<id>/commit` (JSON `Commit`). Reads: `GET read?location=&start=&end=` answers the
/// bytes. `POST external-url` (JSON `BlobRecord`) answers a presigned URL when the storage has one.
public enum InternalBlobPaths {
    public static let prefix = "/internal/blob"
    public static let uploads = prefix + "/uploads"
    public static let read = prefix + "/read"
    /// `POST` (JSON `BlobRecord`): removes an unrecorded duplicate's bytes.
    public static let discard = prefix + "/discard"
    /// `POST` (JSON `BlobRecord`): where a client may fetch the blob directly (`ExternalURL`).
    public static let externalURL = prefix + "/external-url"

    public struct ExternalURL: Codable, Sendable {
        public var url: String?
        public init(url: String?) {
            self.url = url
        }
    }

    public struct StartUpload: Codable, Sendable {
        public var repository: RepositoryName
        public var algorithm: Digest.Algorithm
        /// The client the session counts against (`BlobAPI.startUpload`).
        public var owner: String
        public init(repository: RepositoryName, algorithm: Digest.Algorithm, owner: String) {
            self.repository = repository
            self.algorithm = algorithm
            self.owner = owner
        }
    }

    public struct Commit: Codable, Sendable {
        public var repository: RepositoryName
        public var digest: Digest
        public init(repository: RepositoryName, digest: Digest) {
            self.repository = repository
            self.digest = digest
        }
    }
}

/// Health endpoints every service answers.
public enum HealthPaths {
    /// 200 while the process runs.
    public static let live = "/health/live"
    /// 200 when the service's own dependencies answer; 503 otherwise.
    public static let ready = "/health/ready"
}

// MARK: The Pier One API's calls (`PierOneQueries`)

extension InternalMetadataPaths {
    public static let teams = prefix + "/pierone/teams"
    public static let artifacts = prefix + "/pierone/artifacts"
    public static let tagDetails = prefix + "/pierone/tag-details"
    public static let scmSource = prefix + "/pierone/scm-source"
    public static let recordScmSource = prefix + "/pierone/record-scm-source"
    public static let imageTags = prefix + "/pierone/image-tags"
    public static let statistics = prefix + "/pierone/statistics"
    public static let teamStatistics = prefix + "/pierone/team-statistics"
    public static let oneTeamStatistics = prefix + "/pierone/one-team-statistics"
}

extension InternalMetadata {
    public struct TeamQuery: Codable, Sendable {
        public var team: String
        public var page: PageRequest
        public init(team: String, page: PageRequest = PageRequest()) {
            self.team = team
            self.page = page
        }
    }

    public struct ScmSourceRecord: Codable, Sendable {
        public var source: ScmSource
        public var manifest: Digest
        public var repository: RepositoryName
        public init(source: ScmSource, manifest: Digest, repository: RepositoryName) {
            self.source = source
            self.manifest = manifest
            self.repository = repository
        }
    }

    public struct Prefix: Codable, Sendable {
        public var prefix: String
        public init(prefix: String) { self.prefix = prefix }
    }
}
