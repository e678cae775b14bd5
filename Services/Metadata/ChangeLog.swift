import Contracts
import Synchronization

/// One metadata replica's log of changed repositories (`MetadataAPI.changes`): a ring of the last
/// `capacity` changes, numbered from 1 in the order this process learnt of them, under an epoch
/// drawn at start.
///
/// Where the changes come from decides how fresh the log is:
/// - `.local`: this process makes every change (SQLite, one writer): a change is logged right
///   after its commit, so the log is always current;
/// - `.database`: other replicas commit too (PostgreSQL) and the database announces every commit
///   (`PostgresChangeListener`); the log is as fresh as the last heartbeat that came back through
///   the channel: `NOTIFY`s arrive in commit order, so when a heartbeat sent at T arrives, every
///   change committed before T has arrived before it.
package final class ChangeLog: Sendable {
    package enum Source: Sendable { case local, database }

    private struct State {
        var entries: [RepositoryName?]  // ring; nil marks "everything" (a gap in the channel)
        var last: UInt64 = 0
        /// When the newest heartbeat that came back was sent; nil while the channel is down.
        var freshAsOf: ContinuousClock.Instant?
    }

    package let epoch: String
    let source: Source
    let capacity: Int
    private let state: Mutex<State>

    package init(source: Source, capacity: Int = 65_536) {
        self.source = source
        self.capacity = capacity
        self.epoch = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        self.state = Mutex(State(entries: Array(repeating: nil, count: capacity)))
    }

    /// Logs that `repository` changed.
    package func record(_ repository: RepositoryName) {
        self.state.withLock { state in
            state.last += 1
            state.entries[Int(state.last % UInt64(self.capacity))] = repository
        }
    }

    /// Logs that anything may have changed (the database channel was lost and is back): every
    /// cache behind this position starts afresh.
    package func recordGap() {
        self.state.withLock { state in
            state.last += 1
            state.entries[Int(state.last % UInt64(self.capacity))] = nil
        }
    }

    /// A heartbeat sent at `sent` came back: every change committed before then is logged.
    package func confirm(sentAt sent: ContinuousClock.Instant) {
        self.state.withLock { state in
            if state.freshAsOf.map({ $0 < sent }) ?? true { state.freshAsOf = sent }
        }
    }

    /// The channel is down: nothing can be vouched for until a heartbeat comes back.
    package func lose() {
        self.state.withLock { $0.freshAsOf = nil }
    }

    /// What changed after `cursors`' position in this log.
    package func changes(after cursors: ChangeCursors, now: ContinuousClock.Instant = .now) -> ChangeBatch {
        self.state.withLock { state in
            let staleness: Int64? = switch self.source {
            case .local: 0
            case .database: state.freshAsOf.map { Self.milliseconds(now - $0) }
            }
            var batch = ChangeBatch(epoch: self.epoch, position: state.last, repositories: nil, staleness: staleness)
            guard let after = cursors.positions[self.epoch], after <= state.last,
                  state.last - after <= UInt64(min(self.capacity - 1, ChangeBatch.limit))
            else { return batch }
            var seen = Set<RepositoryName>()
            var repositories: [RepositoryName] = []
            var position = after
            while position < state.last {
                position += 1
                guard let repository = state.entries[Int(position % UInt64(self.capacity))] else { return batch }
                if seen.insert(repository).inserted { repositories.append(repository) }
            }
            batch.repositories = repositories
            return batch
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
