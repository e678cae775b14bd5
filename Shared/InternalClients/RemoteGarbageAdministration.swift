import AsyncHTTPClient
import Contracts
import NIOCore

/// `GarbageAdministration` of a metadata service in another process (`pierone gateway`).
package struct RemoteGarbageAdministration: GarbageAdministration {
    private typealias M = InternalMetadata
    private typealias P = InternalGarbageCalls
    let client: InternalClient

    package init(url: String, http: HTTPClient) {
        self.client = InternalClient(base: url.hasSuffix("/") ? String(url.dropLast()) : url, http: http, service: "metadata")
    }

    package func plan(limit: Int, orphans: Bool) async throws -> GarbagePlan {
        try await self.client.call(P.plan, M.GarbageAdministration(limit: limit, orphans: orphans), timeout: .minutes(30))
    }

    package func runNow(orphans: Bool) async throws -> GarbageRunReport {
        // A collection of a large backlog (or a scan of a large bucket) takes a while; the caller
        // waits for its report.
        try await self.client.call(P.run, M.GarbageAdministration(limit: 0, orphans: orphans), timeout: .minutes(60))
    }

    package func why(_ digest: Digest) async throws -> GarbageExplanation {
        try await self.client.call(P.why, M.Digests(digest: digest))
    }
}
