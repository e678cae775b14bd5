/// What changed in the metadata, for caches in front of it (`MetadataAPI.changes`).
///
/// A metadata replica keeps a log of the repositories whose manifests, tags or blob links changed
/// — by its own calls and, on PostgreSQL, by every replica's (the database announces them,
/// `LISTEN/NOTIFY`) — numbered in the order it learnt of them. A cache asks for what came after
/// the position it last saw and drops those repositories' entries. Only changes that can make a
/// cached answer wrong are logged: a tag moved or deleted, a manifest deleted, a blob unlinked
/// (a new tag or manifest answers a lookup that found nothing before, and nothing caches
/// "nothing").

/// Where a cache stands in the change logs of the replicas it asked: a position per log (its
/// `epoch`). A replica answers from its own log's position; one it has never seen means the
/// cache starts afresh there.
package struct ChangeCursors: Codable, Sendable, Equatable {
    package var positions: [String: UInt64]

    package init(_ positions: [String: UInt64] = [:]) {
        self.positions = positions
    }

    /// Most logs remembered: more replicas than this answering in turn only costs cache flushes.
    package static let limit = 16
}

/// An answer of `MetadataAPI.changes`.
package struct ChangeBatch: Codable, Sendable, Equatable {
    /// The answering replica's log (random per process start).
    package var epoch: String
    /// The position to ask after next time.
    package var position: UInt64
    /// The repositories that changed since the position asked after, each once; nil when this log
    /// cannot tell (the position is unknown, too old, or the replica lost its database channel
    /// meanwhile): everything may have changed.
    package var repositories: [RepositoryName]?
    /// Every change committed more than this many milliseconds before the answer is in the log
    /// (and so in this batch or an earlier one); nil when the replica does not know (its channel
    /// to the database is down): nothing cached may be trusted then.
    package var staleness: Int64?

    package init(epoch: String, position: UInt64, repositories: [RepositoryName]?, staleness: Int64?) {
        self.epoch = epoch
        self.position = position
        self.repositories = repositories
        self.staleness = staleness
    }

    /// Most repositories one answer lists; a cache further behind is told to start afresh.
    package static let limit = 10_000
}
