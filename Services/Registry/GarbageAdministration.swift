import Contracts
import Foundation

/// `GarbageAdministration` where the collector and the retention policy run: the dry run, a run
/// now, and `why`, over the metadata service's reads (`garbageCandidates`, `explain`).
package struct LocalGarbageAdministration: GarbageAdministration {
    let metadata: any MetadataAPI
    let collector: GarbageCollector?
    let retention: RetentionEnforcer?
    let gracePeriod: Duration

    package init(metadata: any MetadataAPI, collector: GarbageCollector?, retention: RetentionEnforcer?, gracePeriod: Duration) {
        self.metadata = metadata
        self.collector = collector
        self.retention = retention
        self.gracePeriod = gracePeriod
    }

    var graceMillis: Int64 { self.gracePeriod.components.seconds * 1000 }

    package func plan(limit: Int, orphans: Bool) async throws -> GarbagePlan {
        let retention = try await self.retention?.enforce(dryRun: true)
        var candidates = try await self.metadata.garbageCandidates(limit: limit)
        for index in candidates.candidates.indices {
            candidates.candidates[index].dueMillis = candidates.candidates[index].queuedMillis + self.graceMillis
        }
        var plan = GarbagePlan(
            retention: retention, candidates: candidates.candidates, truncated: candidates.truncated,
            gracePeriodSeconds: self.gracePeriod.components.seconds, collecting: self.collector != nil
        )
        plan.policy = self.retention?.policy
        if orphans {
            plan.orphans = try await self.requireCollector().scanOrphans(dryRun: true)
        }
        return plan
    }

    private func requireCollector() throws -> GarbageCollector {
        guard let collector = self.collector else {
            throw RegistryError(
                .unsupported, "the garbage collector is not running here (GC_ENABLED=false, or pierone metadata without BLOB_URL)"
            )
        }
        return collector
    }

    package func runNow(orphans: Bool) async throws -> GarbageRunReport {
        var report = GarbageRunReport(retention: try await self.retention?.enforce(dryRun: false))
        if orphans {
            report.orphans = try await self.requireCollector().scanOrphans(dryRun: false)
        }
        if let collector = self.collector {
            let run = try await collector.collect()
            report.reviewed = run.reviewed
            report.unlinked = run.unlinked
            report.deletedManifests = run.deletedManifests
            report.deletedBlobs = run.deletedBlobs
            report.deletedBytes = run.deletedBytes
            report.errors = run.errors
            report.seconds = Double(run.duration.components.seconds) + Double(run.duration.components.attoseconds) / 1e18
        }
        return report
    }

    package func why(_ digest: Digest) async throws -> GarbageExplanation {
        var explanation = try await self.metadata.explain(digest)
        explanation.verdict = Self.verdict(explanation, graceMillis: self.graceMillis, now: Int64(Date().timeIntervalSince1970 * 1000))
        return explanation
    }

    /// One line a person reads: what keeps the digest, or when and why it goes.
    static func verdict(_ explanation: GarbageExplanation, graceMillis: Int64, now: Int64) -> String {
        var keeps: [String] = []
        for use in explanation.manifests {
            if !use.tags.isEmpty {
                keeps.append("tagged \(use.tags.prefix(5).joined(separator: ", ")) in \(use.repository)")
            }
            if let index = use.indexes.first {
                keeps.append("listed by the index \(index) in \(use.repository)")
            }
            if let subject = use.subject, use.subjectPresent {
                keeps.append("a referrer of \(subject) in \(use.repository)")
            }
        }
        for reference in explanation.referencedBy.prefix(5) {
            let tags = reference.tags.isEmpty ? "untagged" : "tagged " + reference.tags.prefix(3).joined(separator: ", ")
            keeps.append("referenced by \(reference.manifest) (\(tags)) in \(reference.repository)")
        }
        if !keeps.isEmpty { return "kept: " + keeps.joined(separator: "; ") }
        if explanation.trashed { return "collected: its metadata is gone and its bytes are being deleted" }
        let due = explanation.queued.map { $0.queuedMillis + graceMillis }.min()
        let when = due.map { $0 <= now ? "at the next collection" : "in about \(RetentionPolicy.days($0 - now))" }
        if !explanation.manifests.isEmpty {
            let repositories = explanation.manifests.map(\.repository).joined(separator: ", ")
            return when.map { "garbage: an untagged manifest no index lists (\(repositories)); collected \($0)" }
                ?? "untagged and listed by no index in \(repositories): deleted only by a retention rule (untaggedFor) or a DELETE"
        }
        if !explanation.linkedInto.isEmpty || explanation.blobSize != nil {
            let place = explanation.linkedInto.isEmpty ? "linked nowhere" : "linked into " + explanation.linkedInto.joined(separator: ", ")
            return "garbage: no manifest references it (\(place)); collected " + (when ?? "once it is queued again")
        }
        return "unknown: never pushed here, or already collected"
    }
}
