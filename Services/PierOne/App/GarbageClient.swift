import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// `pierone gc`: the garbage collection and retention administration of a running registry
/// (`/gc/plan`, `/gc/run`, `/gc/why/<digest>`), and how its answers are printed.
package struct GarbageClient: Sendable {
    /// The registry, e.g. `https://pierone.example.org` (`PIERONE_URL`).
    let base: String
    /// An OAuth2 token with the scope `application.write_all` (`PIERONE_TOKEN`); none while the
    /// registry runs without authentication (then only from its own machine).
    let token: String?
    let http: HTTPClient

    package init(url: String, token: String?, http: HTTPClient = .shared) {
        self.base = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.token = token
        self.http = http
    }

    /// A failure the command reports and exits with.
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package func plan(limit: Int = 1000, orphans: Bool = false) async throws -> GarbagePlan {
        try await self.call(.GET, "/gc/plan?limit=\(limit)" + (orphans ? "&orphans=true" : ""), timeout: .minutes(60))
    }

    package func run(orphans: Bool = false) async throws -> GarbageRunReport {
        try await self.call(.POST, "/gc/run" + (orphans ? "?orphans=true" : ""), timeout: .minutes(60))
    }

    package func why(_ digest: String) async throws -> GarbageExplanation {
        guard let value = Digest(digest) else { throw Failure(description: "\(digest) is not a digest (sha256:<64 hex digits>)") }
        return try await self.call(.GET, "/gc/why/\(value)")
    }

    private func call<Answer: Decodable>(_ method: HTTPMethod, _ path: String, timeout: TimeAmount = .minutes(5)) async throws
        -> Answer
    {
        var request = HTTPClientRequest(url: self.base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: "X-PierOne-Command", value: "gc")
        let response: HTTPClientResponse
        do {
            response = try await self.http.execute(request, timeout: timeout)
        } catch {
            throw Failure(description: "cannot reach \(self.base): \(error)")
        }
        let body = try await response.body.collect(upTo: 64 * 1024 * 1024)
        guard (200..<300).contains(response.status.code) else {
            let message = (try? JSONDecoder().decode(Envelope.self, from: Data(buffer: body)))?.errors.first
                .map { "\($0.code): \($0.message)" } ?? "HTTP \(response.status.code)"
            if response.status.code == 401 {
                throw Failure(description: "\(message) (give a token with the scope application.write_all: --token or PIERONE_TOKEN)")
            }
            throw Failure(description: message)
        }
        return try JSONDecoder().decode(Answer.self, from: Data(buffer: body))
    }

    /// The OCI error envelope a failure answers.
    private struct Envelope: Decodable {
        struct Entry: Decodable {
            var code: String
            var message: String
        }
        var errors: [Entry]
    }

    // MARK: Printing

    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    package static func render(_ plan: GarbagePlan, now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) -> String {
        var lines: [String] = []
        if let retention = plan.retention {
            lines.append(
                "Retention would delete \(retention.deletions.count) (\(retention.repositories) repositories checked)"
                    + (retention.truncated ? ", and more in later runs" : "") + ":"
            )
            for deletion in retention.deletions {
                let what = deletion.tag.map { "\(deletion.repository):\($0)" } ?? "\(deletion.repository)@\(deletion.digest)"
                lines.append(
                    "  \(what)  \(deletion.reason)  age \(RetentionPolicy.days(deletion.ageSeconds * 1000))  \(Self.bytes(deletion.bytes))"
                )
            }
        } else {
            lines.append("Retention: no policy (RETENTION_POLICY_FILE is not set)")
        }
        let freed = plan.candidates.compactMap(\.bytes).reduce(0, +)
        lines.append(
            "Garbage collection (grace period \(RetentionPolicy.days(plan.gracePeriodSeconds * 1000))"
                + (plan.collecting ? "" : ", NOT RUNNING") + "): \(plan.candidates.count) to remove, \(Self.bytes(freed)) freed"
                + (plan.truncated ? " (more are queued)" : "") + ":"
        )
        for candidate in plan.candidates {
            let due = candidate.dueMillis.map { $0 <= now ? "due now" : "due in \(RetentionPolicy.days($0 - now))" } ?? ""
            let place = candidate.repository.map { " in \($0)" } ?? ""
            let size = candidate.bytes.map { "  \(Self.bytes($0))" } ?? ""
            lines.append("  \(candidate.kind) \(candidate.digest)\(place)\(size)  \(due)  \(candidate.reason)")
        }
        if let scan = plan.orphans {
            lines.append(Self.render(scan, dryRun: true))
        }
        return lines.joined(separator: "\n")
    }

    static func render(_ scan: OrphanScan, dryRun: Bool) -> String {
        var lines = [
            "Orphan scan: \(scan.listed) blobs in storage, \(scan.found) without a metadata row (\(Self.bytes(scan.foundBytes)))"
                + (dryRun ? " would be deleted" : ", \(scan.deleted) deleted"),
        ]
        if scan.refused {
            lines.append("  REFUSED: most blobs in storage have no metadata row; check DATABASE_URL and the storage settings")
        }
        for orphan in scan.orphans.prefix(100) {
            lines.append("  orphan \(orphan.location)  \(Self.bytes(orphan.size))  written \(Timestamps.iso8601(millis: orphan.modifiedMillis))")
        }
        if scan.orphans.count > 100 { lines.append("  … and \(scan.orphans.count - 100) more (--json lists up to 1000)") }
        return lines.joined(separator: "\n")
    }

    package static func render(_ report: GarbageRunReport) -> String {
        var lines: [String] = []
        if let retention = report.retention {
            lines.append(
                "Retention deleted \(retention.deletions.count { $0.tag != nil }) tags and "
                    + "\(retention.deletions.count { $0.tag == nil }) untagged manifests"
            )
            for deletion in retention.deletions {
                lines.append("  \(deletion.repository):\(deletion.tag ?? deletion.digest)  \(deletion.reason)")
            }
        }
        lines.append(
            "Collected: \(report.reviewed) reviewed, \(report.unlinked) links, \(report.deletedManifests) manifests, "
                + "\(report.deletedBlobs) blobs (\(Self.bytes(report.deletedBytes))) in \(String(format: "%.1f", report.seconds)) s"
                + (report.errors > 0 ? ", \(report.errors) deletions failed (retried later)" : "")
        )
        if let scan = report.orphans { lines.append(Self.render(scan, dryRun: false)) }
        return lines.joined(separator: "\n")
    }

    package static func render(_ explanation: GarbageExplanation) -> String {
        var lines = ["\(explanation.digest): \(explanation.verdict)"]
        if let size = explanation.blobSize { lines.append("  blob of \(Self.bytes(size))") }
        if !explanation.linkedInto.isEmpty { lines.append("  linked into: " + explanation.linkedInto.joined(separator: ", ")) }
        for reference in explanation.referencedBy {
            let tags = reference.tags.isEmpty ? "untagged" : reference.tags.joined(separator: ", ")
            lines.append("  referenced by \(reference.repository)@\(reference.manifest) (\(tags))")
        }
        for use in explanation.manifests {
            var facts = ["tags: " + (use.tags.isEmpty ? "none" : use.tags.joined(separator: ", "))]
            if !use.indexes.isEmpty { facts.append("in indexes: " + use.indexes.joined(separator: ", ")) }
            if let subject = use.subject { facts.append("subject \(subject)" + (use.subjectPresent ? "" : " (gone)")) }
            if use.referrers > 0 { facts.append("\(use.referrers) referrers") }
            lines.append("  manifest in \(use.repository): " + facts.joined(separator: "; "))
        }
        for entry in explanation.queued {
            lines.append("  queued for review" + (entry.repository.map { " in \($0)" } ?? "") + " at "
                + Timestamps.iso8601(millis: entry.queuedMillis))
        }
        return lines.joined(separator: "\n")
    }
}
