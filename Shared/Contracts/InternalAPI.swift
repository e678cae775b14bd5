/// The internal HTTP API between the services: paths and the JSON bodies of each call.
///
/// Metadata calls are `POST <path>` with the request struct as JSON, answered with the response
/// as JSON (HTTP/2). Blob byte streams are plain HTTP bodies (see `InternalBlobPaths`). Failures
/// carry a `RegistryError` as JSON with its status.
package enum InternalMetadataPaths {
    package static let prefix = "/internal/metadata"
}

/// One JSON call of the internal API, declared once with its path, request and answer types: the
/// server registers its route from it, the client calls it, and the metrics label is the route
/// the server matched. The method is `POST`.
package struct InternalCall<Body: Codable & Sendable, Answer: Codable & Sendable>: Sendable {
    package let path: String

    package init(_ path: String) {
        self.path = path
    }
}

/// Every call of the metadata service (`MetadataAPI` and `PierOneQueries`), one per method.
package enum InternalMetadataCalls {
    package typealias M = InternalMetadata
    private static let prefix = InternalMetadataPaths.prefix
    package static let blob = InternalCall<M.BlobInRepository, M.Maybe<BlobRecord>>(prefix + "/blob")
    package static let linkBlob = InternalCall<M.LinkBlob, BlobRecord>(prefix + "/link-blob")
    package static let putManifest = InternalCall<ManifestPut, M.Done>(prefix + "/put-manifest")
    package static let manifest = InternalCall<M.ManifestQuery, M.Maybe<ManifestRecord>>(prefix + "/manifest")
    package static let tags = InternalCall<M.Listing, M.Maybe<Page<String>>>(prefix + "/tags")
    package static let repositories = InternalCall<M.Listing, Page<String>>(prefix + "/repositories")
    package static let mountBlob = InternalCall<M.Mount, M.Maybe<BlobRecord>>(prefix + "/mount-blob")
    package static let collectGarbage = InternalCall<M.GarbageReview, GarbageSweep>(prefix + "/collect-garbage")
    package static let purgeCollected = InternalCall<M.Locations, M.Done>(prefix + "/purge-collected")
    package static let deleteTag = InternalCall<M.TagInRepository, M.Done>(prefix + "/delete-tag")
    package static let deleteManifest = InternalCall<M.BlobInRepository, M.Done>(prefix + "/delete-manifest")
    package static let unlinkBlob = InternalCall<M.BlobInRepository, M.Done>(prefix + "/unlink-blob")
    package static let garbageCandidates = InternalCall<M.GarbageReview, GarbageCandidates>(prefix + "/garbage-candidates")
    package static let lease = InternalCall<M.Lease, M.Flag>(prefix + "/lease")
    package static let unknownLocations = InternalCall<M.Locations, M.Locations>(prefix + "/unknown-locations")
    package static let explain = InternalCall<M.Digests, GarbageExplanation>(prefix + "/explain")
    package static let expireTag = InternalCall<M.Expiry, M.Flag>(prefix + "/expire-tag")
    package static let expireManifest = InternalCall<M.Expiry, M.Flag>(prefix + "/expire-manifest")
    package static let untaggedManifests = InternalCall<M.UntaggedQuery, Page<UntaggedManifest>>(prefix + "/untagged-manifests")
    package static let recordPulls = InternalCall<M.Pulls, M.Done>(prefix + "/record-pulls")
    package static let referrers = InternalCall<M.ReferrersQuery, Page<Descriptor>>(prefix + "/referrers")
    package static let changes = InternalCall<ChangeCursors, ChangeBatch>(prefix + "/changes")
    // The Pier One API's calls (`PierOneQueries`).
    package static let teams = InternalCall<M.Listing, Page<String>>(prefix + "/pierone/teams")
    package static let artifacts = InternalCall<M.TeamQuery, Page<String>>(prefix + "/pierone/artifacts")
    package static let tagDetails = InternalCall<M.Listing, M.Maybe<Page<TagDetail>>>(prefix + "/pierone/tag-details")
    package static let scmSource = InternalCall<M.TagInRepository, M.Maybe<ScmSource>>(prefix + "/pierone/scm-source")
    package static let recordScmSource = InternalCall<M.ScmSourceRecord, M.Done>(prefix + "/pierone/record-scm-source")
    package static let imageTags = InternalCall<M.Prefix, ImageLookup>(prefix + "/pierone/image-tags")
    package static let statistics = InternalCall<M.Done, RegistryStatistics>(prefix + "/pierone/statistics")
    package static let teamStatistics = InternalCall<M.Listing, Page<TeamStatistics>>(prefix + "/pierone/team-statistics")
    package static let oneTeamStatistics = InternalCall<M.TeamQuery, M.Maybe<TeamStatistics>>(
        prefix + "/pierone/one-team-statistics"
    )
    package static let artifactStatistics = InternalCall<M.TeamQuery, Page<ArtifactStatistics>>(prefix + "/pierone/artifact-statistics")
}

/// The garbage collection administration (`GarbageAdministration`), served by `pierone metadata`
/// where the collector and the retention policy run.
package enum InternalGarbageCalls {
    package typealias M = InternalMetadata
    private static let prefix = InternalMetadataPaths.prefix + "/gc"
    package static let plan = InternalCall<M.GarbageAdministration, GarbagePlan>(prefix + "/plan")
    package static let run = InternalCall<M.GarbageAdministration, GarbageRunReport>(prefix + "/run")
    package static let why = InternalCall<M.Digests, GarbageExplanation>(prefix + "/why")
}

/// Bodies of the metadata calls.
package enum InternalMetadata {
    package struct BlobInRepository: Codable, Sendable {
        package var digest: Digest
        package var repository: RepositoryName
        package init(digest: Digest, repository: RepositoryName) {
            self.digest = digest
            self.repository = repository
        }
    }

    package struct LinkBlob: Codable, Sendable {
        package var blob: BlobRecord
        package var repository: RepositoryName
        package init(blob: BlobRecord, repository: RepositoryName) {
            self.blob = blob
            self.repository = repository
        }
    }

    package struct ManifestQuery: Codable, Sendable {
        package var reference: Reference
        package var repository: RepositoryName
        package init(reference: Reference, repository: RepositoryName) {
            self.reference = reference
            self.repository = repository
        }
    }

    package struct TagInRepository: Codable, Sendable {
        package var tag: Tag
        package var repository: RepositoryName
        package init(tag: Tag, repository: RepositoryName) {
            self.tag = tag
            self.repository = repository
        }
    }

    package struct Listing: Codable, Sendable {
        package var repository: RepositoryName?
        package var page: PageRequest
        package init(repository: RepositoryName?, page: PageRequest) {
            self.repository = repository
            self.page = page
        }
    }

    package struct Mount: Codable, Sendable {
        package var digest: Digest
        package var repository: RepositoryName
        package var sources: [RepositoryName]?
        package init(digest: Digest, repository: RepositoryName, sources: [RepositoryName]?) {
            self.digest = digest
            self.repository = repository
            self.sources = sources
        }
    }

    package struct GarbageReview: Codable, Sendable {
        package var cutoff: Int64
        package var limit: Int
        package init(cutoff: Int64, limit: Int) {
            self.cutoff = cutoff
            self.limit = limit
        }
    }

    /// A retention deletion: of `tag` if it still names `digest`, or (no tag) of the untagged
    /// manifest `digest` if it was pushed before `cutoff`.
    package struct Expiry: Codable, Sendable {
        package var repository: RepositoryName
        package var digest: Digest
        package var tag: Tag?
        package var cutoff: Int64?
        package var reason: String
        package var includingImmutable: Bool
        package init(
            repository: RepositoryName, digest: Digest, tag: Tag?, cutoff: Int64?, reason: String, includingImmutable: Bool
        ) {
            self.repository = repository
            self.digest = digest
            self.tag = tag
            self.cutoff = cutoff
            self.reason = reason
            self.includingImmutable = includingImmutable
        }
    }

    package struct Flag: Codable, Sendable {
        package var value: Bool
        package init(_ value: Bool) { self.value = value }
    }

    package struct UntaggedQuery: Codable, Sendable {
        package var repository: RepositoryName
        package var cutoff: Int64
        package var page: PageRequest
        package init(repository: RepositoryName, cutoff: Int64, page: PageRequest) {
            self.repository = repository
            self.cutoff = cutoff
            self.page = page
        }
    }

    package struct Pulls: Codable, Sendable {
        package var pulls: [PullRecord]
        package init(pulls: [PullRecord]) { self.pulls = pulls }
    }

    package struct Lease: Codable, Sendable {
        package var name: String
        package var holder: String
        package var seconds: Int
        package init(name: String, holder: String, seconds: Int) {
            self.name = name
            self.holder = holder
            self.seconds = seconds
        }
    }

    package struct GarbageAdministration: Codable, Sendable {
        package var limit: Int
        package var orphans: Bool
        package init(limit: Int, orphans: Bool) {
            self.limit = limit
            self.orphans = orphans
        }
    }

    package struct Locations: Codable, Sendable {
        package var locations: [String]
        package init(locations: [String]) { self.locations = locations }
    }

    package struct Digests: Codable, Sendable {
        package var digest: Digest
        package init(digest: Digest) { self.digest = digest }
    }

    package struct ReferrersQuery: Codable, Sendable {
        package var subject: Digest
        package var repository: RepositoryName
        package var artifactType: String?
        package var page: PageRequest
        package init(subject: Digest, repository: RepositoryName, artifactType: String?, page: PageRequest) {
            self.subject = subject
            self.repository = repository
            self.artifactType = artifactType
            self.page = page
        }
    }

    /// An optional answer (JSON has no top-level null in every decoder).
    package struct Maybe<Value: Codable & Sendable>: Codable, Sendable {
        package var value: Value?
        package init(_ value: Value?) { self.value = value }
    }

    /// An answer without content.
    package struct Done: Codable, Sendable {
        package init() {}
    }
}

/// Routes of the blob service, each declared once (the server's route, the client's URL, the
/// metrics label). Sessions: `POST uploads` (JSON `StartUpload`), `GET|DELETE
/// uploads/{id}?repository=`, `PATCH uploads/{id}?repository=&offset=` with the bytes as the body,
/// `PUT uploads/{id}?repository=&digest=&offset=` with the last bytes as the body (append + commit),
/// `POST uploads/{id}/commit` (JSON `Commit`). Reads: `GET read?location=&start=&end=` answers the
/// bytes. `POST external-url` (JSON `BlobRecord`) answers a presigned URL when the storage has one.
package enum InternalBlobPaths {
    package static let prefix = "/internal/blob"
    package static let startUpload = InternalCall<StartUpload, UploadStatus>(prefix + "/uploads")
    /// `GET` (status), `PATCH` (append), `PUT` (append and commit), `DELETE` (cancel) of one
    /// session; `:id` is the session's `UploadID`.
    package static let session = prefix + "/uploads/:id"
    package static let commit = InternalCall<Commit, BlobRecord>(prefix + "/uploads/:id/commit")
    /// `GET` with `location`, `size`, `digest` and optionally `start` and `end`: the bytes.
    package static let read = prefix + "/read"
    /// Removes an unrecorded duplicate's bytes.
    package static let discard = InternalCall<BlobRecord, InternalMetadata.Done>(prefix + "/discard")
    /// Removes many unrecorded blobs' bytes; answers the locations deleted.
    package static let discardAll = InternalCall<InternalMetadata.Locations, InternalMetadata.Locations>(prefix + "/discard-all")
    /// The committed blobs in storage, a page at a time (the orphan scan).
    package static let storedBlobs = InternalCall<InternalMetadata.Listing, StoredBlobPage>(prefix + "/stored-blobs")
    /// Where a client may fetch the blob directly.
    package static let externalURL = InternalCall<BlobRecord, ExternalURL>(prefix + "/external-url")

    /// `template` (a path with `:id`) for the session `id`.
    package static func path(_ template: String, id: UploadID) -> String {
        template.replacing(":id", with: id.value)
    }

    package struct ExternalURL: Codable, Sendable {
        package var url: String?
        package init(url: String?) {
            self.url = url
        }
    }

    package struct StartUpload: Codable, Sendable {
        package var repository: RepositoryName
        package var algorithm: Digest.Algorithm
        /// The client the session counts against (`BlobAPI.startUpload`).
        package var owner: String
        package init(repository: RepositoryName, algorithm: Digest.Algorithm, owner: String) {
            self.repository = repository
            self.algorithm = algorithm
            self.owner = owner
        }
    }

    package struct Commit: Codable, Sendable {
        package var repository: RepositoryName
        package var digest: Digest
        package init(repository: RepositoryName, digest: Digest) {
            self.repository = repository
            self.digest = digest
        }
    }
}

/// Health endpoints every service answers.
package enum HealthPaths {
    /// 200 while the process runs.
    package static let live = "/health/live"
    /// 200 when the service's own dependencies answer; 503 otherwise.
    package static let ready = "/health/ready"
}

// MARK: Bodies of the Pier One API's calls (`PierOneQueries`)

extension InternalMetadata {
    package struct TeamQuery: Codable, Sendable {
        package var team: String
        package var page: PageRequest
        package init(team: String, page: PageRequest = PageRequest()) {
            self.team = team
            self.page = page
        }
    }

    package struct ScmSourceRecord: Codable, Sendable {
        package var source: ScmSource
        package var manifest: Digest
        package var repository: RepositoryName
        package init(source: ScmSource, manifest: Digest, repository: RepositoryName) {
            self.source = source
            self.manifest = manifest
            self.repository = repository
        }
    }

    package struct Prefix: Codable, Sendable {
        package var prefix: String
        package init(prefix: String) { self.prefix = prefix }
    }
}
