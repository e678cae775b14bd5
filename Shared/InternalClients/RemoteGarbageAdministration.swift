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

    package func plan(limit: Int) async throws -> GarbagePlan {
        try await self.client.call(P.plan, M.GarbageReview(cutoff: 0, limit: limit), timeout: .minutes(5))
    }

    package func runNow() async throws -> GarbageRunReport {
        // A collection of a large backlog takes a while; the caller waits for its report.
        try await self.client.call(P.run, M.Done(), timeout: .minutes(30))
    }

    package func why(_ digest: Digest) async throws -> GarbageExplanation {
        try await self.client.call(P.why, M.Digests(digest: digest))
    }
}
