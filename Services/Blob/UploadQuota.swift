import Contracts
import Synchronization

/// The open upload sessions of each client (an identity, or an address when anonymous), so one
/// caller cannot open sessions without bound (`UPLOAD_SESSIONS_PER_CLIENT`).
///
/// Kept per blob-service process: a session committed or cancelled through another replica is
/// still counted here until `prune` finds it gone on storage, which `admit` does (at most every
/// `pruneInterval` per client) only when the client is at its limit. With N blob replicas one client
/// holds at most N × limit sessions; each costs a few hundred bytes of storage until it expires.
final class UploadQuota: Sendable {
    private struct State {
        var sessions: [String: Set<UploadID>] = [:]
        var owners: [UploadID: String] = [:]
        var pruned: [String: ContinuousClock.Instant] = [:]
    }

    let limit: Int
    let pruneInterval: Duration
    private let state = Mutex(State())

    init(limit: Int, pruneInterval: Duration = .seconds(10)) {
        self.limit = max(1, limit)
        self.pruneInterval = pruneInterval
    }

    /// Records `id` as a session of `owner` when the owner is under the limit.
    func open(_ id: UploadID, owner: String) -> Bool {
        self.state.withLock { state in
            guard state.sessions[owner, default: []].count < self.limit else { return false }
            state.sessions[owner, default: []].insert(id)
            state.owners[id] = owner
            return true
        }
    }

    /// The sessions of `owner` to check on storage, when a check is due (nil otherwise).
    func sessionsToCheck(of owner: String, now: ContinuousClock.Instant = .now) -> [UploadID]? {
        self.state.withLock { state in
            if let last = state.pruned[owner], now - last < self.pruneInterval { return nil }
            state.pruned[owner] = now
            return Array(state.sessions[owner] ?? [])
        }
    }

    /// Forgets a session (committed, cancelled, expired, or found gone).
    func ended(_ id: UploadID) {
        self.state.withLock { state in
            guard let owner = state.owners.removeValue(forKey: id) else { return }
            state.sessions[owner]?.remove(id)
            if state.sessions[owner]?.isEmpty == true {
                state.sessions[owner] = nil
                state.pruned[owner] = nil
            }
        }
    }

    func count(of owner: String) -> Int {
        self.state.withLock { $0.sessions[owner]?.count ?? 0 }
    }
}
