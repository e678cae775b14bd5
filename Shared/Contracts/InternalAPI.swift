/// The internal HTTP API between the services: paths and the JSON bodies of each call.
///
/// Metadata calls are `POST <path>` with the request struct as JSON, answered with the response
/// as JSON (HTTP/2). Blob byte streams are plain HTTP bodies (see `InternalBlobPaths`). Failures
/// carry a `RegistryError` as JSON with its status.
public enum InternalMetadataPaths {
    public static let prefix = "/internal/metadata"
}

/// One JSON call of the internal API, declared once with its path, request and answer types: the
/// server registers its route from it, the client calls it, and the metrics label is the route
/// the server matched. The method is `POST`.
public struct InternalCall<Body: Codable & Sendable, Answer: Codable & Sendable>: Sendable {
    public let path: String

    public init(_ path: String) {
        self.path = path
    }
}

/// Every call of the metadata service (`MetadataAPI` and `PierOneQueries`), one per method.
public enum InternalMetadataCalls {
    public typealias M = InternalMetadata
    private static let prefix = InternalMetadataPaths.prefix
    public static let blob = InternalCall<M.BlobInRepository, M.Maybe<BlobRecord>>(prefix + "/blob")
    public static let linkBlob = InternalCall<M.LinkBlob, BlobRecord>(prefix + "/link-blob")
    public static let putManifest = InternalCall<ManifestPut, M.Done>(prefix + "/put-manifest")
    public static let manifest = InternalCall<M.ManifestQuery, M.Maybe<ManifestRecord>>(prefix + "/manifest")
    public static let tags = InternalCall<M.Listing, M.Maybe<Page<String>>>(prefix + "/tags")
    public static let repositories = InternalCall<M.Listing, Page<String>>(prefix + "/repositories")
    public static let mountableBlob = InternalCall<M.Digests, M.Maybe<BlobRecord>>(prefix + "/mountable-blob")
    public static let deleteTag = InternalCall<M.TagInRepository, M.Done>(prefix + "/delete-tag")
    public static let deleteManifest = InternalCall<M.BlobInRepository, M.Done>(prefix + "/delete-manifest")
    public static let unlinkBlob = InternalCall<M.BlobInRepository, M.Done>(prefix + "/unlink-blob")
    public static let referrers = InternalCall<M.ReferrersQuery, Page<Descriptor>>(prefix + "/referrers")
    // The Pier One API's calls (`PierOneQueries`).
    public static let teams = InternalCall<M.Listing, Page<String>>(prefix + "/pierone/teams")
    public static let artifacts = InternalCall<M.TeamQuery, Page<String>>(prefix + "/pierone/artifacts")
    public static let tagDetails = InternalCall<M.Listing, M.Maybe<Page<TagDetail>>>(prefix + "/pierone/tag-details")
    public static let scmSource = InternalCall<M.TagInRepository, M.Maybe<ScmSource>>(prefix + "/pierone/scm-source")
    public static let recordScmSource = InternalCall<M.ScmSourceRecord, M.Done>(prefix + "/pierone/record-scm-source")
    public static let imageTags = InternalCall<M.Prefix, ImageLookup>(prefix + "/pierone/image-tags")
    public static let statistics = InternalCall<M.Done, RegistryStatistics>(prefix + "/pierone/statistics")
    public static let teamStatistics = InternalCall<M.Listing, Page<TeamStatistics>>(prefix + "/pierone/team-statistics")
    public static let oneTeamStatistics = InternalCall<M.TeamQuery, M.Maybe<TeamStatistics>>(
        prefix + "/pierone/one-team-statistics"
    )
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

/// Routes of the blob service, each declared once (the server's route, the client's URL, the
/// metrics label). Sessions: `POST uploads` (JSON `StartUpload`), `GET|DELETE
/// uploads/{id}?repository=`, `PATCH uploads/{id}?repository=&offset=` with the bytes as the body,
/// `PUT uploads/{id}?repository=&digest=&offset=` with the last bytes as the body (append + commit),
/// `POST uploads/{id}/commit` (JSON `Commit`). Reads: `GET read?location=&start=&end=` answers the
/// bytes. `POST external-url` (JSON `BlobRecord`) answers a presigned URL when the storage has one.
public enum InternalBlobPaths {
    public static let prefix = "/internal/blob"
    public static let startUpload = InternalCall<StartUpload, UploadStatus>(prefix + "/uploads")
    /// `GET` (status), `PATCH` (append), `PUT` (append and commit), `DELETE` (cancel) of one
    /// session; `:id` is the session's `UploadID`.
    public static let session = prefix + "/uploads/:id"
    public static let commit = InternalCall<Commit, BlobRecord>(prefix + "/uploads/:id/commit")
    /// `GET` with `location`, `size`, `digest` and optionally `start` and `end`: the bytes.
    public static let read = prefix + "/read"
    /// Removes an unrecorded duplicate's bytes.
    public static let discard = InternalCall<BlobRecord, InternalMetadata.Done>(prefix + "/discard")
    /// Where a client may fetch the blob directly.
    public static let externalURL = InternalCall<BlobRecord, ExternalURL>(prefix + "/external-url")

    /// `template` (a path with `:id`) for the session `id`.
    public static func path(_ template: String, id: UploadID) -> String {
        template.replacing(":id", with: id.value)
    }

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

// MARK: Bodies of the Pier One API's calls (`PierOneQueries`)

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
