import Contracts
import Foundation
import Logging
import PostgresNIO
import Runtime
import TestSupport
import Testing

@testable import Metadata

/// What the stores log for caches (`ChangeLog`): every commit that can make a cached answer wrong,
/// and nothing for what cannot (new tags, manifests and links); on PostgreSQL through the
/// database's `NOTIFY` to a listener, including what other replicas commit.
@Suite struct ChangeLogTests {
    typealias C = MetadataStoreConformance

    /// Waits until the log vouches for everything committed up to now (at once for a local log;
    /// on PostgreSQL, once a heartbeat sent after now came back).
    static func settle(_ log: ChangeLog) async throws {
        let start = ContinuousClock.now
        for _ in 0..<1000 {
            if let staleness = log.changes(after: ChangeCursors()).staleness,
               .milliseconds(staleness) < ContinuousClock.now - start
            {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the change log never caught up")
    }

    static func logsWhatCachesMustDrop(_ store: some MetadataStore, _ log: ChangeLog) async throws {
        var cursors = ChangeCursors()
        func changed() async throws -> [RepositoryName]? {
            try await Self.settle(log)
            let batch = log.changes(after: cursors)
            cursors.positions[batch.epoch] = batch.position
            return batch.repositories
        }
        _ = try await changed()
        let layer = C.blob("layer")
        try await store.linkBlob(layer, into: C.repository)
        try await store.linkBlob(layer, into: C.other)
        let first = C.manifest("first", blobs: [layer], tags: ["1.0-SNAPSHOT", "1.0"])
        try await store.putManifest(first, rules: C.immutableUnlessSnapshot)
        #expect(try await changed() == [], "new links, a new manifest and new tags change no cached answer")

        let second = C.manifest("second", blobs: [layer], tags: ["1.0-SNAPSHOT"])
        try await store.putManifest(second, rules: C.immutableUnlessSnapshot)
        #expect(try await changed() == [C.repository], "a tag moved")
        try await store.putManifest(second, rules: C.immutableUnlessSnapshot)
        #expect(try await changed() == [], "the same push again moves nothing")

        #expect(try await store.deleteManifest(second.digest, in: C.repository, rules: C.immutableUnlessSnapshot))
        #expect(try await changed() == [C.repository], "a manifest and its tag deleted")
        #expect(try await store.unlinkBlob(layer.digest, from: C.other))
        #expect(try await changed() == [C.other], "a blob unlinked")
    }

    @Test func sqliteLogsAfterCommit() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("changes-\(UUID()).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = ChangeLog(source: .local)
        let store = try await SQLiteMetadataStore.open(path: path, changes: log, logger: Logger(label: "test"))
        try await Self.logsWhatCachesMustDrop(store, log)
        try await store.close()
    }

    static func withPostgres(_ body: (PostgresMetadataStore, PostgresClient, ChangeLog) async throws -> Void) async throws {
        let cluster = try await PostgresCluster.shared()
        let url = try await cluster.makeDatabase()
        let settings = try #require(try PostgresSettings.from(EnvironmentReader(["DATABASE_URL": url])))
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        let logger = quiet
        let client = try PostgresClient.make(settings, logger: logger)
        let log = ChangeLog(source: .database)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await PostgresMigrator.migrate(client, logger: logger)
            let listener = PostgresChangeListener(settings: settings, log: log, logger: logger)
            group.addTask { await listener.run() }
            let store = PostgresMetadataStore(client: client, timeout: .seconds(10), logger: logger)
            try await body(store, client, log)
        }
    }

    @Test func postgresLogsWhatAnyReplicaCommits() async throws {
        try await Self.withPostgres { store, _, log in
            try await Self.logsWhatCachesMustDrop(store, log)
        }
    }

    /// The channel cut: a listener whose connection the database ends stops vouching for the log
    /// at once, and logs a gap when it is back (caches start afresh).
    @Test func aLostChannelIsAGapAndNoFreshness() async throws {
        try await Self.withPostgres { _, client, log in
            try await Self.settle(log)
            let before = log.changes(after: ChangeCursors())
            let cursors = ChangeCursors([before.epoch: before.position])
            #expect(log.changes(after: cursors).repositories == [])
            let logger = Logger(label: "test")
            let ended = try await client.query(
                "SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity WHERE application_name = 'pierone-changes' AND datname = current_database()",
                logger: logger
            )
            for try await count in ended.decode(Int.self) { #expect(count == 1) }
            var lost = false
            for _ in 0..<100 where !lost {
                lost = log.changes(after: cursors).staleness.map { $0 > 1000 } ?? true
                if !lost { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(lost, "no freshness while the channel is down")
            try await Self.settle(log)
            #expect(log.changes(after: cursors).repositories == nil, "a gap: everything may have changed meanwhile")
        }
    }
}
