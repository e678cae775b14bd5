/// What an operator asks of garbage collection and retention (`pierone gc`, the `/gc/` admin
/// API): what would be deleted and why, a run now, and what keeps a digest. Served where the
/// collector and the retention policy live (the metadata service; all of it under `serve`).
package protocol GarbageAdministration: Sendable {
    /// The dry run: what retention would delete now, and the collector's queue (due or not) with
    /// what each review would remove. Deletes nothing.
    /// With `orphans`, also lists storage for blobs no metadata row holds (a full scan).
    func plan(limit: Int, orphans: Bool) async throws -> GarbagePlan
    /// Runs retention and then a collection of everything due, now, and with `orphans` the orphan
    /// scan; what they deleted.
    func runNow(orphans: Bool) async throws -> GarbageRunReport
    /// What keeps `digest` (a blob or a manifest), or why it goes.
    func why(_ digest: Digest) async throws -> GarbageExplanation
}

/// One deletion retention made, or in a dry run would make.
package struct RetentionDeletion: Sendable, Equatable, Codable {
    package var repository: String
    /// Nil for an untagged manifest.
    package var tag: String?
    package var digest: String
    package var rule: String
    package var reason: String
    /// Since the tag got its manifest, or the untagged manifest was pushed.
    package var ageSeconds: Int64
    /// The image's size (manifest and what it references); layers other images share stay.
    package var bytes: Int64

    package init(
        repository: String, tag: String?, digest: String, rule: String, reason: String, ageSeconds: Int64, bytes: Int64
    ) {
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.rule = rule
        self.reason = reason
        self.ageSeconds = ageSeconds
        self.bytes = bytes
    }
}

package struct RetentionReport: Sendable, Equatable, Codable {
    package var dryRun: Bool
    package var repositories = 0
    package var deletions: [RetentionDeletion] = []
    /// Whether the run stopped at its deletion limit (the next run goes on).
    package var truncated = false

    package init(dryRun: Bool) {
        self.dryRun = dryRun
    }
}

/// A queue entry of the collector and what its review would remove now.
package struct GarbageCandidate: Sendable, Equatable, Codable {
    /// `manifest` (an untagged manifest of a deleted index or subject), `link` (a blob linked
    /// into a repository no manifest of it references), `blob` (bytes no repository links).
    package var kind: String
    /// Nil for a blob no repository links.
    package var repository: String?
    package var digest: String
    /// Bytes freed: the blob's, when its last link goes (nil when other links keep the bytes).
    package var bytes: Int64?
    package var queuedMillis: Int64
    /// When the grace period lets the review take it (ms since 1970); filled by the administration.
    package var dueMillis: Int64?
    package var reason: String

    package init(
        kind: String, repository: String?, digest: String, bytes: Int64?, queuedMillis: Int64, dueMillis: Int64? = nil,
        reason: String
    ) {
        self.kind = kind
        self.repository = repository
        self.digest = digest
        self.bytes = bytes
        self.queuedMillis = queuedMillis
        self.dueMillis = dueMillis
        self.reason = reason
    }
}

package struct GarbageCandidates: Sendable, Equatable, Codable {
    package var candidates: [GarbageCandidate]
    /// Whether more entries were queued than were looked at.
    package var truncated: Bool

    package init(candidates: [GarbageCandidate], truncated: Bool) {
        self.candidates = candidates
        self.truncated = truncated
    }
}

package struct GarbagePlan: Sendable, Equatable, Codable {
    /// Nil when no retention policy is configured.
    package var retention: RetentionReport?
    package var candidates: [GarbageCandidate]
    /// Whether the queue had more entries than `limit`.
    package var truncated: Bool
    package var gracePeriodSeconds: Int64
    /// Whether the collector runs (`GC_ENABLED`, and a blob service to delete through).
    package var collecting: Bool
    /// When asked for: what an orphan scan would delete.
    package var orphans: OrphanScan?
    /// The retention rules configured; nil without a policy.
    package var policy: RetentionPolicy?

    package init(
        retention: RetentionReport?, candidates: [GarbageCandidate], truncated: Bool, gracePeriodSeconds: Int64, collecting: Bool
    ) {
        self.retention = retention
        self.candidates = candidates
        self.truncated = truncated
        self.gracePeriodSeconds = gracePeriodSeconds
        self.collecting = collecting
    }
}

/// What an orphan scan found: blobs in storage that no metadata row holds, written longer ago
/// than the scan's minimum age.
package struct OrphanScan: Sendable, Equatable, Codable {
    /// Blobs listed in storage.
    package var listed = 0
    /// The orphans found (in a dry run, the first 1,000 of them).
    package var orphans: [StoredBlob] = []
    package var found = 0
    package var foundBytes: Int64 = 0
    /// Deleted (not in a dry run).
    package var deleted = 0
    /// Written before this (ms since 1970): younger blobs may be a commit about to be recorded.
    package var cutoffMillis: Int64 = 0
    /// Whether the scan deleted nothing because most of the storage had no rows (the wrong
    /// database or storage, not a crash's leftovers).
    package var refused = false

    package init() {}
}

package struct GarbageRunReport: Sendable, Equatable, Codable {
    package var retention: RetentionReport?
    /// When the run included the orphan scan.
    package var orphans: OrphanScan?
    package var reviewed = 0
    package var unlinked = 0
    package var deletedManifests = 0
    package var deletedBlobs = 0
    package var deletedBytes: Int64 = 0
    package var errors = 0
    package var seconds: Double = 0

    package init(retention: RetentionReport?) {
        self.retention = retention
    }
}

/// Everything that keeps a digest, as `why` reports it.
package struct GarbageExplanation: Sendable, Equatable, Codable {
    package struct Reference: Sendable, Equatable, Codable {
        package var repository: String
        package var manifest: String
        package var tags: [String]
        package init(repository: String, manifest: String, tags: [String]) {
            self.repository = repository
            self.manifest = manifest
            self.tags = tags
        }
    }

    package struct ManifestUse: Sendable, Equatable, Codable {
        package var repository: String
        package var tags: [String]
        /// Indexes of the repository that list it.
        package var indexes: [String]
        package var subject: String?
        package var subjectPresent: Bool
        package var referrers: Int
        package init(repository: String, tags: [String], indexes: [String], subject: String?, subjectPresent: Bool, referrers: Int) {
            self.repository = repository
            self.tags = tags
            self.indexes = indexes
            self.subject = subject
            self.subjectPresent = subjectPresent
            self.referrers = referrers
        }
    }

    package struct Queued: Sendable, Equatable, Codable {
        package var repository: String?
        package var queuedMillis: Int64
        package init(repository: String?, queuedMillis: Int64) {
            self.repository = repository
            self.queuedMillis = queuedMillis
        }
    }

    package var digest: String
    /// The blob's size when a blob row exists.
    package var blobSize: Int64?
    /// Repositories the blob is linked into.
    package var linkedInto: [String] = []
    /// Manifests that reference it as a blob or child.
    package var referencedBy: [Reference] = []
    /// Where it is a manifest.
    package var manifests: [ManifestUse] = []
    package var queued: [Queued] = []
    /// Removed, its bytes not yet confirmed deleted.
    package var trashed = false
    /// One line: what keeps it, or why and when it goes; filled by the administration.
    package var verdict = ""

    package init(digest: String) {
        self.digest = digest
    }
}
