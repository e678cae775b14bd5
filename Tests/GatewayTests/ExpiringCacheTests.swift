import Testing

@testable import Gateway

/// The tokeninfo and team caches: bounded, oldest out first in constant time, one load per key.
@Suite struct ExpiringCacheTests {
    @Test func aFullCacheDropsTheOldestEntry() async {
        let cache = ExpiringCache<String, Int>(lifetime: .seconds(60), capacity: 3)
        for (index, key) in ["a", "b", "c"].enumerated() { await cache.store(index, for: key) }
        await cache.store(9, for: "b")  // a new value for a key it holds evicts nothing
        #expect(await cache.count == 3)
        await cache.store(3, for: "d")
        #expect(await cache.count == 3)
        #expect(await cache.value(for: "a") == nil)
        #expect(await cache.value(for: "b") == 9)
        #expect(await cache.value(for: "d") == 3)
        // Many more than the capacity: the bound holds, the newest stay.
        for index in 0..<10_000 { await cache.store(index, for: "k\(index)") }
        #expect(await cache.count == 3)
        #expect(await cache.value(for: "k9999") == 9999)
    }

    @Test func concurrentLoadsOfOneKeyShareOneLoad() async throws {
        let cache = ExpiringCache<String, Int>(lifetime: .seconds(60), capacity: 10)
        let loads = Counter()
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    try await cache.value(for: "token") {
                        await loads.increment()
                        try await Task.sleep(for: .milliseconds(100))
                        return 42
                    }
                }
            }
            for try await value in group { #expect(value == 42) }
        }
        #expect(await loads.value == 1)
    }

    @Test func aFailedLoadIsNotCached() async throws {
        struct Outage: Error {}
        let cache = ExpiringCache<String, Int>(lifetime: .seconds(60), capacity: 10)
        await #expect(throws: Outage.self) { try await cache.value(for: "t") { throw Outage() } }
        #expect(try await cache.value(for: "t") { 7 } == 7)
    }

    actor Counter {
        var value = 0
        func increment() { self.value += 1 }
    }
}
