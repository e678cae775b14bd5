import Contracts

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A tag created, moved or deleted, or an untagged manifest deleted (`tag` nil), as written to the
/// outbox. Deletions the registry made itself (retention, garbage collection) carry a `reason`.
struct TagEvent: Sendable, Codable, Equatable {
    enum Action: String, Sendable, Codable {
        case created, moved, deleted
    }

    /// Unique per change; the same for every sink, so receivers can drop a repeated delivery.
    var id: String
    var action: Action
    var repository: String
    var team: String
    var artifact: String
    var tag: String?
    var digest: String
    var previousDigest: String?
    var pushedBy: String?
    var timeMillis: Int64
    var reason: String?

    init(
        action: Action, repository: RepositoryName, tag: String?, digest: Digest, previous: String?, pushedBy: String?,
        reason: String? = nil
    ) {
        self.id = UUID().uuidString.lowercased()
        self.action = action
        self.repository = repository.value
        self.team = repository.team
        self.artifact = repository.artifact
        self.tag = tag
        self.digest = digest.description
        self.previousDigest = previous
        self.pushedBy = pushedBy
        self.timeMillis = Int64(Date().timeIntervalSince1970 * 1000)
        self.reason = reason
    }

    /// A tag removed (by deleting it or the manifest it named); `digest` is what it named.
    init(deleted tag: String, from repository: RepositoryName, digest: Digest, reason: String? = nil) {
        self.init(action: .deleted, repository: repository, tag: tag, digest: digest, previous: nil, pushedBy: nil, reason: reason)
    }

    /// An untagged manifest the garbage collector removed: no index lists it and its subject is gone.
    init(collected digest: Digest, from repository: RepositoryName) {
        self.init(
            action: .deleted, repository: repository, tag: nil, digest: digest, previous: nil, pushedBy: nil,
            reason: "garbage: untagged, in no index, its subject deleted or none"
        )
    }

    var json: String {
        String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self)
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
