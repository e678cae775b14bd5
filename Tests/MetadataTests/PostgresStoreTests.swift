import Contracts
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Runtime
import TestSupport
import Testing

@testable import Metadata
import Synchronization

/// The same store conformance suite as SQLite, against a real PostgreSQL cluster.
@Suite struct PostgresStoreTests {
    /// A migrated store on a fresh database of the shared test cluster, with its client running.
    static func withStore(_ body: (PostgresMetadataStore, PostgresClient) async throws -> Void) async throws {
        let cluster = try await PostgresCluster.shared()
        let url = try await cluster.makeDatabase()
        let settings = try #require(try PostgresSettings.from(EnvironmentReader(["DATABASE_URL": url])))
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let client = try PostgresClient.make(settings, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await PostgresMigrator.migrate(client, logger: logger)
            try await body(
                PostgresMetadataStore(
                    client: client, timeout: .seconds(10), outboxSinks: MetadataStoreConformance.sinks, logger: logger
                ),
                client
            )
        }
    }

    @Test(arguments: MetadataStoreConformance.all.map(\.0))
    func conformance(_ name: String) async throws {
        let check = try #require(MetadataStoreConformance.all.first { $0.0 == name }?.1)
        try await Self.withStore { store, _ in try await check(store) }
    }

    /// Two transactions that lock two rows in opposite orders deadlock; PostgreSQL rolls one back
    /// (40P01), and the store runs it again instead of answering 503: both commit.
    @Test(.timeLimit(.minutes(1))) func aDeadlockVictimRunsAgain() async throws {
        try await Self.withStore { store, client in
            try await client.query("CREATE TABLE deadlock_probe (id INT PRIMARY KEY, n INT NOT NULL)")
            try await client.query("INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)")
            let attempts = Attempts()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (first, second) in [(1, 2), (2, 1)] {
                    group.addTask {
                        try await store.transaction { connection in
                            attempts.count()
                            try await connection.query("UPDATE deadlock_probe SET n = n + 1 WHERE id = \(first)", logger: store.logger)
                            // Both hold their first row before either asks for its second.
                            try await connection.query("SELECT pg_sleep(0.3)", logger: store.logger)
                            try await connection.query("UPDATE deadlock_probe SET n = n + 1 WHERE id = \(second)", logger: store.logger)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(attempts.value == 3, "one of the two was the victim and ran again")
            let rows = try await client.query("SELECT n FROM deadlock_probe ORDER BY id")
            var counts: [Int] = []
            for try await n in rows.decode(Int.self) { counts.append(n) }
            #expect(counts == [2, 2])
        }
    }

    /// A transaction that is the victim on every try gives up after three with a 503 that says
    /// what happened (a busy database, not an unreachable one).
    @Test func aVictimEveryTimeIs503SayingWhy() async throws {
        try await Self.withStore { store, _ in
            let attempts = Attempts()
            let error = await #expect(throws: RegistryError.self) {
                try await store.transaction { connection in
                    attempts.count()
                    try await connection.query(
                        "DO $$ BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '40P01'; END $$", logger: store.logger
                    )
                }
            }
            #expect(error?.status == 503)
            #expect(error?.message.contains("rolled the change back") == true, "\(String(describing: error))")
            #expect(attempts.value == PostgresMetadataStore.transactionAttempts)
        }
    }

    final class Attempts: Sendable {
        private let state = Mutex(0)
        func count() { self.state.withLock { $0 += 1 } }
        var value: Int { self.state.withLock { $0 } }
    }

    /// A garbage review (here, a second connection doing what `review` does) holds a link and its
    /// blob row and then deletes both: a push linking the same digest meanwhile waits for it and
    /// records its own bytes, and a mount finds nothing — neither keeps the deleted location.
    @Test(arguments: ["link", "mount"])
    func pushesWaitForAReviewHoldingTheirRows(_ operation: String) async throws {
        try await Self.withStore { store, client in
            let repository = RepositoryName("team/app")!
            let digest = Contracts.Digest("sha256:" + String(repeating: operation == "link" ? "a" : "b", count: 64))!
            let collected = BlobRecord(digest: digest, size: 3, location: "blobs/collected")
            _ = try await store.linkBlob(collected, into: repository)
            let (locked, signal) = AsyncStream<Void>.makeStream()
            let logger = Logger(label: "review")
            async let review: Void = client.withTransaction(logger: logger) { connection in
                try await connection.query(
                    "SELECT 1 FROM repository_blobs WHERE digest = \(digest.description) FOR UPDATE", logger: logger
                )
                try await connection.query("SELECT 1 FROM blobs WHERE digest = \(digest.description) FOR UPDATE", logger: logger)
                signal.yield()
                try await Task.sleep(for: .milliseconds(500))
                try await connection.query("DELETE FROM repository_blobs WHERE digest = \(digest.description)", logger: logger)
                try await connection.query("DELETE FROM blobs WHERE digest = \(digest.description)", logger: logger)
            }
            for await _ in locked { break }
            let started = ContinuousClock.now
            if operation == "link" {
                let pushed = BlobRecord(digest: digest, size: 3, location: "blobs/pushed")
                let recorded = try await store.linkBlob(pushed, into: repository)
                #expect(ContinuousClock.now - started >= .milliseconds(400), "the link waited for the review")
                try await review
                #expect(recorded == pushed)
                #expect(try await store.blob(digest, in: repository) == pushed)
            } else {
                let mounted = try await store.mountBlob(digest, into: RepositoryName("other/app")!, from: nil)
                #expect(ContinuousClock.now - started >= .milliseconds(400), "the mount waited for the review")
                try await review
                #expect(mounted == nil)
                #expect(try await store.blob(digest, in: RepositoryName("other/app")!) == nil)
            }
        }
    }

    /// A second linker of the same digest that locks the link and then the review queue (as a
    /// link made step by step, a mount and a review do) while a push links it in one statement:
    /// the statement takes the two rows in the same order and waits, so the two cannot deadlock.
    /// The second connection checks for deadlocks at once (`deadlock_timeout`), so it is the victim
    /// when there is a cycle: it was, before the statement's queue row followed its link.
    @Test(.timeLimit(.minutes(1))) func aOneStatementLinkLocksInTheOrderOfEveryOtherLinker() async throws {
        try await Self.withStore { store, client in
            let repository = RepositoryName("team/app")!
            let digest = Contracts.Digest("sha256:" + String(repeating: "c", count: 64))!
            let blob = BlobRecord(digest: digest, size: 3, location: "blobs/first")
            _ = try await store.linkBlob(blob, into: repository)
            let (locked, signal) = AsyncStream<Void>.makeStream()
            let logger = Logger(label: "second linker")
            async let second: Void = client.withTransaction(logger: logger) { connection in
                try await connection.query("SET LOCAL deadlock_timeout = '10ms'", logger: logger)
                try await connection.query(
                    """
                    UPDATE repository_blobs SET created_at = created_at
                    WHERE digest = \(digest.description) AND repository_id = (SELECT id FROM repositories WHERE name = 'team/app')
                    """, logger: logger
                )
                signal.yield()
                // Until the push's statement waits for a lock (asked on another connection: a
                // transaction keeps its first view of pg_stat_activity).
                var waiting = false
                for _ in 0..<200 where !waiting {
                    try await Task.sleep(for: .milliseconds(50))
                    let rows = try await client.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND datname = current_database() AND query LIKE '%new_repository%'"
                    )
                    for try await count in rows.decode(Int.self) { waiting = count > 0 }
                }
                #expect(waiting, "the push's link waited for the second linker's row")
                try await connection.query(
                    """
                    INSERT INTO gc_queue (repository_id, digest, queued_at)
                    SELECT id, \(digest.description), 0 FROM repositories WHERE name = 'team/app'
                    ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = GREATEST(gc_queue.queued_at, EXCLUDED.queued_at)
                    """, logger: logger
                )
            }
            for await _ in locked { break }
            let recorded = try await store.linkBlob(BlobRecord(digest: digest, size: 3, location: "blobs/again"), into: repository)
            do {
                try await second
            } catch {
                Issue.record("the second linker failed (a deadlock's victim?): \(String(reflecting: error))")
            }
            #expect(recorded == blob)
        }
    }

    @Test func replicasStartingTogetherMigrateOnce() async throws {
        try await Self.withStore { _, client in
            // The store is migrated; eight more replicas racing to migrate change nothing and fail nothing.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await PostgresMigrator.migrate(client, logger: Logger(label: "replica")) }
                }
                try await group.waitForAll()
            }
            let rows = try await client.query("SELECT count(*) FROM schema_version")
            for try await count in rows.decode(Int.self) {
                #expect(count == PostgresSchema.migrations.count)
            }
        }
    }

    @Test func refusesADatabaseNewerThanTheCode() async throws {
        try await Self.withStore { _, client in
            try await client.query("INSERT INTO schema_version (version) VALUES (999)")
            await #expect(throws: MigrationError.self) {
                try await PostgresMigrator.migrate(client, logger: Logger(label: "test"))
            }
        }
    }
}

@Suite struct PostgresSettingsTests {
    @Test func databaseURL() throws {
        let settings = try #require(try PostgresSettings.from(EnvironmentReader([
            "DATABASE_URL": "postgres://user:p%40ss@db.example.com:6432/registry?sslmode=verify-full",
        ])))
        #expect(settings == PostgresSettings(
            host: "db.example.com", port: 6432, database: "registry", username: "user", password: "p@ss",
            sslMode: .verifyFull
        ))
    }

    @Test func pierOneVariables() throws {
        let settings = try #require(try PostgresSettings.from(EnvironmentReader([
            "DB_SUBNAME": "//pierone.example.eu-west-1.rds.amazonaws.com:5432/pierone?ssl=true",
            "DB_USER": "registry", "DB_PASSWORD": "secret", "DB_MAX_CONNECTIONS": "4",
        ])))
        #expect(settings.host == "pierone.example.eu-west-1.rds.amazonaws.com")
        #expect(settings.database == "pierone")
        #expect(settings.username == "registry" && settings.password == "secret")
        #expect(settings.sslMode == .require)
        #expect(settings.maximumConnections == 4)
        let verified = try #require(try PostgresSettings.from(EnvironmentReader([
            "DB_SUBNAME": "//localhost:5432/pierone", "PGSSLMODE": "verify-full",
        ])))
        #expect(verified.sslMode == .verifyFull)
        #expect(verified.username == "postgres" && verified.password == "postgres")
    }

    @Test func noDatabaseMeansSQLite() throws {
        #expect(try PostgresSettings.from(EnvironmentReader([:])) == nil)
    }

    @Test(arguments: [
        ["DATABASE_URL": "mysql://x@y/z"], ["DATABASE_URL": "postgres://host"], ["DB_SUBNAME": "host:5432/db"],
        ["DB_SUBNAME": "//localhost/pierone", "PGSSLMODE": "sometimes"], ["DATABASE_URL": "postgres://h/db?sslmode=maybe"],
    ])
    func badSettingsNameTheVariable(_ environment: [String: String]) {
        do {
            _ = try PostgresSettings.from(EnvironmentReader(environment))
            Issue.record("accepted \(environment)")
        } catch let error as ConfigurationError {
            #expect(environment.keys.contains(error.variable))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

/// `PGSSLMODE` against a server with a certificate from a private CA, issued for `localhost`.
@Suite struct PostgresTLSTests {
    /// One connection with the TLS settings `PGSSLMODE` and `PGSSLROOTCERT` produce; it must end
    /// up encrypted. A single connection fails at once where the pool would keep retrying.
    static func connect(host: String, mode: String, rootCertificate: String?, cluster: PostgresCluster) async throws {
        var environment = [
            "DATABASE_URL": "postgres://\(PostgresCluster.user):\(PostgresCluster.password)@\(host):\(cluster.port)/postgres",
            "PGSSLMODE": mode,
        ]
        environment["PGSSLROOTCERT"] = rootCertificate
        let settings = try #require(try PostgresSettings.from(EnvironmentReader(environment)))
        let tls = try #require(settings.tlsConfiguration())
        let configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password,
            database: settings.database, tls: .require(try NIOSSLContext(configuration: tls))
        )
        var logger = Logger(label: "tls-test")
        logger.logLevel = .critical
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            let rows = try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: logger)
            for try await encrypted in rows.decode(Bool.self) {
                #expect(encrypted)
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    @Test func verifyFullChecksTheCertificateAndTheHostName() async throws {
        let cluster = try await PostgresCluster.start(tls: true)
        let ca = try #require(cluster.certificateAuthority)
        // The certificate chains to the configured CA and names the host: accepted.
        try await Self.connect(host: "localhost", mode: "verify-full", rootCertificate: ca, cluster: cluster)
        // Same CA, but the certificate does not name 127.0.0.1: refused by verify-full, fine for verify-ca.
        await #expect(throws: (any Error).self) {
            try await Self.connect(host: "127.0.0.1", mode: "verify-full", rootCertificate: ca, cluster: cluster)
        }
        try await Self.connect(host: "127.0.0.1", mode: "verify-ca", rootCertificate: ca, cluster: cluster)
        // Without the private CA the chain is not trusted.
        await #expect(throws: (any Error).self) {
            try await Self.connect(host: "localhost", mode: "verify-full", rootCertificate: nil, cluster: cluster)
        }
        // require encrypts without checking.
        try await Self.connect(host: "127.0.0.1", mode: "require", rootCertificate: nil, cluster: cluster)
    }
}
