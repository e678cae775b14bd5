/// A bounded in-memory cache whose entries expire after a fixed time. Used for tokeninfo and
/// team answers (negative ones too), so a burst of requests with one token costs one lookup.
///
/// Every operation is O(1): entries expire in the order they were stored (the lifetime is fixed),
/// so a FIFO of keys names the oldest one to evict, and a full cache drops it instead of scanning.
/// Concurrent lookups of one key that is not cached share one load (`value(for:orLoad:)`).
package actor ExpiringCache<Key: Hashable & Sendable, Value: Sendable> {
    private struct Entry {
        var value: Value
        var expires: ContinuousClock.Instant
        var generation: UInt64
    }

    private let lifetime: Duration
    private let capacity: Int
    private var entries: [Key: Entry] = [:]
    /// Keys in the order stored, with the generation they were stored as; stale items (a key stored
    /// again, or removed) are skipped when they reach the front.
    private var order: [(key: Key, generation: UInt64)] = []
    private var head = 0
    private var generation: UInt64 = 0
    private var loading: [Key: Task<Value, any Error>] = [:]

    package init(lifetime: Duration, capacity: Int) {
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
    }

    package func value(for key: Key) -> Value? {
        guard let entry = self.entries[key] else { return nil }
        guard entry.expires > .now else {
            self.entries[key] = nil
            return nil
        }
        return entry.value
    }

    /// The cached value, or the result of `load` — run once for all callers asking for `key`
    /// while it runs — which is then cached. A load that throws is not cached.
    package func value(for key: Key, orLoad load: @escaping @Sendable () async throws -> Value) async throws -> Value {
        if let value = self.value(for: key) { return value }
        if let running = self.loading[key] { return try await running.value }
        let task = Task { try await load() }
        self.loading[key] = task
        defer { self.loading[key] = nil }
        let value = try await task.value
        self.store(value, for: key)
        return value
    }

    package func store(_ value: Value, for key: Key) {
        guard self.lifetime > .zero else { return }
        if self.entries[key] == nil {
            while self.entries.count >= self.capacity, self.evictOldest() {}
        }
        self.generation &+= 1
        self.entries[key] = Entry(value: value, expires: .now + self.lifetime, generation: self.generation)
        self.order.append((key, self.generation))
        self.compactIfNeeded()
    }

    /// Drops the entry stored longest ago; false when there is none.
    private func evictOldest() -> Bool {
        while self.head < self.order.count {
            let item = self.order[self.head]
            self.head += 1
            if self.entries[item.key]?.generation == item.generation {
                self.entries[item.key] = nil
                return true
            }
        }
        return false
    }

    /// Keeps the FIFO within a constant factor of the capacity (amortised O(1) per store).
    private func compactIfNeeded() {
        guard self.order.count > 2 * self.capacity + 16 else { return }
        self.order = self.order[self.head...].filter { self.entries[$0.key]?.generation == $0.generation }
        self.head = 0
    }

    package var count: Int { self.entries.count }
}
