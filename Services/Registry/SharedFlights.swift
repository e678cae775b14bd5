import Synchronization

/// Work in flight, by key, that callers asking for the same thing at the same time wait on
/// instead of doing again: every node of a rollout resolves the same tag and pulls the same new
/// layers at once. The first caller leads (does the work and `finish`es the flight however it
/// ends); the others follow (wait for its value). A follower that is cancelled, or waits longer
/// than it was willing to, stops waiting, and the leader's work goes on; a leader that is
/// cancelled ends the work. A flight that ends without a value (failed, cancelled, nothing
/// usable) leaves each follower to do the work itself.
package final class SharedFlights<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let flights = Mutex<[Key: Flight]>([:])

    package init() {}

    package enum Role: Sendable {
        case lead(Flight)
        case follow(Flight)
    }

    /// Follows the flight of `key` in progress (one begun less than `age` ago, when given), or
    /// begins one that the caller leads.
    package func join(_ key: Key, youngerThan age: Duration? = nil) -> Role {
        let now = ContinuousClock.now
        return self.flights.withLock { flights in
            if let flight = flights[key], age.map({ now - flight.started < $0 }) ?? true { return .follow(flight) }
            let flight = Flight(flights: self, key: key, started: now)
            flights[key] = flight
            return .lead(flight)
        }
    }

    fileprivate func remove(_ flight: Flight, for key: Key) {
        self.flights.withLock { flights in
            if flights[key] === flight { flights[key] = nil }
        }
    }

    package final class Flight: Sendable {
        struct State {
            /// Set once: the value, or nil for none.
            var outcome: Value??
            var waiters: [Int: CheckedContinuation<Value?, Never>] = [:]
            var next = 0
            /// Waiters cancelled before they were registered.
            var cancelled: Set<Int> = []
        }

        private let flights: SharedFlights
        private let key: Key
        let started: ContinuousClock.Instant
        private let state = Mutex(State())

        fileprivate init(flights: SharedFlights, key: Key, started: ContinuousClock.Instant) {
            self.flights = flights
            self.key = key
            self.started = started
        }

        /// Waits for the leader's value; nil when it gave none, or none within `limit`. Throws
        /// when the caller is cancelled.
        package func value(waitingAtMost limit: Duration? = nil) async throws -> Value? {
            let id = self.state.withLock { state in
                defer { state.next += 1 }
                return state.next
            }
            // Weak: a flight's value (and what it holds) must not outlive its waiters by a timer.
            let timer = limit.map { limit in
                Task { [weak self] in
                    try? await Task.sleep(for: limit)
                    if !Task.isCancelled { self?.abandon(id) }
                }
            }
            defer { timer?.cancel() }
            let value = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                    let now: Value?? = self.state.withLock { state in
                        if let outcome = state.outcome { return .some(outcome) }
                        if state.cancelled.remove(id) != nil { return .some(nil) }
                        state.waiters[id] = continuation
                        return .none
                    }
                    if let now { continuation.resume(returning: now) }
                }
            } onCancel: {
                self.abandon(id)
            }
            try Task.checkCancellation()
            return value
        }

        /// Ends the wait of `id` with nil (before it began waiting, too).
        private func abandon(_ id: Int) {
            let waiter = self.state.withLock { state -> CheckedContinuation<Value?, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                if state.outcome == nil { state.cancelled.insert(id) }
                return nil
            }
            waiter?.resume(returning: nil)
        }

        /// Ends the flight (the leader's duty, however the work ended): hands `value` to every
        /// follower, and the next caller for the key begins a flight of its own.
        package func finish(_ value: Value?) {
            self.flights.remove(self, for: self.key)
            let waiters = self.state.withLock { state -> [CheckedContinuation<Value?, Never>] in
                guard state.outcome == nil else { return [] }
                state.outcome = .some(value)
                defer { state.waiters = [:] }
                return Array(state.waiters.values)
            }
            for waiter in waiters { waiter.resume(returning: value) }
        }
    }
}
