import Contracts
import Foundation
import Logging
import ServiceLifecycle

/// Applies the retention policy (`RETENTION_POLICY_FILE`, `RetentionPolicy`) every `interval`:
/// reads the tags of each repository a rule names, deletes what the rules select, each deletion
/// conditional on the tag still naming the manifest it was decided on, and deletes untagged
/// manifests past an `untaggedFor` rule. What the deletions free goes through the garbage
/// collector's queue like any delete. Replicas may run it at once: a deletion made twice is made
/// once.
package final class RetentionEnforcer: Service, Sendable {
    package typealias Report = RetentionReport

    let metadata: any MetadataAPI
    package let policy: RetentionPolicy
    let interval: Duration
    let logger: Logger
    let observe: @Sendable (Report) -> Void
    /// Only report what would be deleted (`RETENTION_DRY_RUN`).
    let dryRun: Bool
    /// Deletions per run: a policy that suddenly selects a great deal works through it over runs.
    static let deletionLimit = 10_000

    package init(
        metadata: any MetadataAPI, policy: RetentionPolicy, interval: Duration, holder: String = UUID().uuidString,
        dryRun: Bool = false, logger: Logger, observe: @escaping @Sendable (Report) -> Void = { _ in }
    ) {
        self.dryRun = dryRun
        self.holder = holder
        self.metadata = metadata
        self.policy = policy
        self.interval = interval
        self.logger = logger
        self.observe = observe
    }

    package func run() async throws {
        try? await cancelWhenGracefulShutdown {
            // Not at once: the process's migrations run at start, and a restart loop must not
            // make retention run at every start.
            try await Task.sleep(for: min(self.interval, .seconds(600)))
            while true {
                do {
                    // One replica at a time: the lease outlasts a long run and is renewed per repository.
                    if try await self.metadata.lease("retention", holder: self.holder, seconds: Self.leaseSeconds) {
                        let report = try await self.enforce(dryRun: self.dryRun, renewing: true)
                        if self.dryRun {
                            for deletion in report.deletions.prefix(1000) {
                                self.logger.info(
                                    "retention would delete (RETENTION_DRY_RUN)",
                                    metadata: [
                                        "repository": "\(deletion.repository)", "tag": "\(deletion.tag ?? "")",
                                        "digest": "\(deletion.digest)", "reason": "\(deletion.reason)",
                                    ]
                                )
                            }
                        } else {
                            self.observe(report)
                        }
                    }
                } catch where !Task.isCancelled {
                    self.logger.error("retention failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: self.interval)
            }
        }
    }

    /// One pass over every repository a rule names (or only `repository`); with `dryRun`, what
    /// would be deleted, deleting nothing.
    /// This process's name in the lease (see `GarbageCollector.holder`).
    let holder: String
    static let leaseSeconds = 900

    package func enforce(dryRun: Bool, only repository: RepositoryName? = nil, renewing: Bool = false) async throws -> Report {
        var report = Report(dryRun: dryRun)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var repositories: [RepositoryName] = []
        if let repository {
            repositories = self.policy.applies(to: repository) ? [repository] : []
        } else {
            var after: String?
            repeat {
                let page = try await self.metadata.repositories(page: PageRequest(limit: 1000, after: after))
                repositories += page.items.compactMap { RepositoryName($0) }.filter { self.policy.applies(to: $0) }
                after = page.hasMore ? page.items.last : nil
            } while after != nil
        }
        for name in repositories {
            try Task.checkCancellation()
            report.repositories += 1
            if renewing, try await !self.metadata.lease("retention", holder: self.holder, seconds: Self.leaseSeconds) { break }
            try await self.enforceTags(in: name, now: now, into: &report)
            try await self.enforceUntagged(in: name, now: now, into: &report)
            if report.truncated { break }
        }
        if !dryRun, !report.deletions.isEmpty {
            self.logger.info(
                "retention deleted",
                metadata: [
                    "tags": "\(report.deletions.count { $0.tag != nil })",
                    "untagged_manifests": "\(report.deletions.count { $0.tag == nil })",
                    "repositories": "\(report.repositories)",
                ]
            )
        }
        return report
    }

    private func enforceTags(in repository: RepositoryName, now: Int64, into report: inout Report) async throws {
        var details: [TagDetail] = []
        var after: String?
        repeat {
            guard let page = try await self.metadata.tagDetails(in: repository, page: PageRequest(limit: 1000, after: after))
            else { return }
            details += page.items
            after = page.hasMore ? page.items.last?.name : nil
        } while after != nil
        let facts = details.map {
            RetentionPolicy.TagFacts(
                name: $0.name, digest: $0.manifestDigest, pushedMillis: $0.createdMillis, pulledMillis: $0.pulledMillis,
                immutable: $0.immutable
            )
        }
        let sizes = Dictionary(details.map { ($0.name, $0.totalSize) }, uniquingKeysWith: { first, _ in first })
        for expiry in self.policy.expiries(in: repository, tags: facts, now: now) {
            guard report.deletions.count < Self.deletionLimit else {
                report.truncated = true
                return
            }
            guard let tag = Tag(expiry.tag.name) else { continue }
            if !report.dryRun {
                // One refusal (a tag made immutable since) must not stop the run.
                do {
                    guard try await self.metadata.expireTag(
                        tag, in: repository, naming: expiry.tag.digest, reason: "retention: " + expiry.reason,
                        includingImmutable: expiry.immutable
                    ) else { continue }
                } catch let error as RegistryError {
                    self.logger.warning(
                        "retention could not delete a tag",
                        metadata: ["repository": "\(repository)", "tag": "\(tag)", "error": "\(error.message)"]
                    )
                    continue
                }
                self.logger.info(
                    "retention deleted a tag",
                    metadata: ["repository": "\(repository)", "tag": "\(tag)", "reason": "\(expiry.reason)"]
                )
            }
            report.deletions.append(RetentionDeletion(
                repository: repository.value, tag: expiry.tag.name, digest: expiry.tag.digest.description, rule: expiry.rule,
                reason: expiry.reason, ageSeconds: max(0, now - expiry.tag.pushedMillis) / 1000, bytes: sizes[expiry.tag.name] ?? 0
            ))
        }
    }

    private func enforceUntagged(in repository: RepositoryName, now: Int64, into report: inout Report) async throws {
        guard let rule = self.policy.untaggedRules(of: repository).first, let age = rule.untaggedFor else { return }
        let cutoff = now - age * 1000
        var after: String?
        repeat {
            let page = try await self.metadata.untaggedManifests(
                in: repository, pushedBefore: cutoff, page: PageRequest(limit: 1000, after: after)
            )
            for manifest in page.items {
                guard report.deletions.count < Self.deletionLimit else {
                    report.truncated = true
                    return
                }
                let reason = "\(rule.name): untagged for \(RetentionPolicy.days(now - manifest.pushedMillis)) "
                    + "(limit \(RetentionPolicy.days(age * 1000)))"
                if !report.dryRun {
                    guard try await self.metadata.expireManifest(
                        manifest.digest, in: repository, pushedBefore: cutoff, reason: "retention: " + reason
                    ) else { continue }
                }
                report.deletions.append(RetentionDeletion(
                    repository: repository.value, tag: nil, digest: manifest.digest.description, rule: rule.name, reason: reason,
                    ageSeconds: max(0, now - manifest.pushedMillis) / 1000, bytes: manifest.totalSize
                ))
            }
            after = page.hasMore ? page.items.last?.digest.description : nil
        } while after != nil
    }
}
