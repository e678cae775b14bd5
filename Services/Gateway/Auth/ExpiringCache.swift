/// A bounded in-memory cache whose entries expire after a fixed time. Used for tokeninfo and
/// team answers (negative ones too), so a burst of requests with one token costs one lookup.
package actor ExpiringCache<Key: Hashable & Sendable, Value: Sendable> {
    private struct Entry {
        var value: Value
        var expires: ContinuousClock.Instant
    }

    private let lifetime: Duration
    private let capacity: Int
    private var entries: [Key: Entry] = [:]

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

    package func store(_ value: Value, for key: Key) {
        guard self.lifetime > .zero else { return }
        if self.entries.count >= self.capacity, self.entries[key] == nil {
            let now = ContinuousClock.now
            self.entries = self.entries.filter { $0.value.expires > now }
            if self.entries.count >= self.capacity,
               let oldest = self.entries.min(by: { $0.value.expires < $1.value.expires })?.key
            {
                self.entries[oldest] = nil
            }
        }
        self.entries[key] = Entry(value: value, expires: .now + self.lifetime)
    }

    package var count: Int { self.entries.count }
}
