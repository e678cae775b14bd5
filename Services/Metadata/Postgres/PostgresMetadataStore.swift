import Contracts
import Logging
import NIOCore
import PostgresNIO

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The production metadata store: PostgreSQL, shared by every metadata replica.
///
/// Every decision that concurrent requests could race on is made by the database inside one
/// transaction: tags move with `INSERT … ON CONFLICT DO NOTHING` followed by `SELECT … FOR UPDATE`;
/// a manifest locks the rows of what it references `FOR SHARE`, and deletes lock what they remove
/// `FOR UPDATE`, so a delete and a push that needs the same content serialise.
final class PostgresMetadataStore: MetadataStore {
    let client: PostgresClient
    let logger: Logger
    /// Longest a call may take, waiting for a connection included, before it fails with 503.
    let timeout: Duration
    /// Notification sinks: each tag change writes one outbox row per sink.
    let outboxSinks: [String]

    init(client: PostgresClient, timeout: Duration, outboxSinks: [String] = [], logger: Logger) {
        self.client = client
        self.outboxSinks = outboxSinks
        self.timeout = timeout
        self.logger = logger
    }

    /// Runs `body` with a deadline, turning an unreachable or failing database into 503.
    func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withThrowingTaskGroup(of: T.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: self.timeout)
                    throw Self.unavailable("no answer from the database within \(self.timeout)")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch {
            throw self.translate(error)
        }
    }

    /// What a client should see of a database error: the registry error a transaction threw, 503
    /// for an unreachable or overloaded database, anything else as it is (a 500 with the cause logged).
    func translate(_ error: any Error) -> any Error {
        switch error {
        case let error as PostgresTransactionError:
            if let cause = error.closureError ?? error.beginError ?? error.commitError {
                return self.translate(cause)
            }
            return error
        case let error as PSQLError where Self.isUnavailable(error):
            self.logger.warning("metadata database unavailable", metadata: ["error": "\(String(reflecting: error))"])
            return Self.unavailable(Self.unavailableReason(error))
        default:
            return error
        }
    }

    /// Runs `body` in a transaction with a deadline. A transaction PostgreSQL chose as a deadlock's
    /// victim, or failed for serialization, was rolled back whole: it runs again (twice at most)
    /// before the caller sees the 503.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = self.logger
        let client = self.client
        return try await self.run {
            try await self.retryingVictims {
                try await client.withTransaction(logger: logger) { connection in try await body(connection) }
            }
        }
    }

    static let transactionAttempts = 3

    /// Runs `body` — a transaction, or one statement that is its own — again when PostgreSQL
    /// rolled it back as a deadlock's victim or for serialization, up to `transactionAttempts` tries.
    func retryingVictims<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch where attempt < Self.transactionAttempts && Self.isRetryable(error) {
                attempt += 1
                self.logger.info("rolled back by the database, run again", metadata: ["attempt": "\(attempt)"])
            }
        }
    }

    /// A deadlock victim (40P01) or a serialization failure (40001): a statement's error, or the
    /// cause of a transaction's.
    static func isRetryable(_ error: any Error) -> Bool {
        if let error = error as? PostgresTransactionError {
            return (error.closureError ?? error.commitError).map(Self.isRetryable) ?? false
        }
        guard let error = error as? PSQLError else { return false }
        return error.code == .server && ["40P01", "40001"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    /// What the client is told of an unavailable database: a busy database is not an unreachable one.
    static func unavailableReason(_ error: PSQLError) -> String {
        guard error.code == .server else { return "the metadata database is not reachable" }
        switch (error.serverInfo?[.sqlState] ?? "").prefix(2) {
        case "40": return "the metadata database rolled the change back under concurrent changes"
        case "53": return "the metadata database is out of resources"
        case "57": return "the metadata database stopped the statement (shutting down, or a timeout)"
        default: return "the metadata database is not reachable"
        }
    }

    static func unavailable(_ message: String) -> RegistryError {
        RegistryError(.unavailable, message + "; try again shortly")
    }

    /// Connection failures, and server errors of the classes that mean "not now": connection
    /// exceptions (08), operator intervention such as a shutdown or a statement timeout (57),
    /// transaction rollback such as a deadlock (40), insufficient resources (53).
    static func isUnavailable(_ error: PSQLError) -> Bool {
        guard error.code == .server else { return true }
        let state = error.serverInfo?[.sqlState] ?? ""
        return ["08", "57", "40", "53"].contains(String(state.prefix(2)))
    }

    func ping() async throws {
        try await self.run {
            let rows = try await self.client.query("SELECT 1", logger: self.logger)
            for try await _ in rows.decode(Int.self) {}
        }
    }

    // MARK: Blobs

    func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord? {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT b.size, b.location FROM blobs b
                JOIN repository_blobs rb ON rb.digest = b.digest
                JOIN repositories r ON r.id = rb.repository_id
                WHERE r.name = \(repository.value) AND b.digest = \(digest.description)
                """, logger: self.logger
            )
            for try await (size, location) in rows.decode((Int64, String).self) {
                return BlobRecord(digest: digest, size: size, location: location)
            }
            return nil
        }
    }

    func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        do {
            return try await self.linkBlobOnce(blob, into: repository)
        } catch where Self.isMissingBlobRow(error) {
            // The garbage collector removed the digest's row while this link was being made: the
            // pushed bytes (a location of their own) become the digest's row now.
            return try await self.linkBlobOnce(blob, into: repository)
        }
    }

    private func linkBlobOnce(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        let digest = blob.digest.description
        let recorded: BlobRecord? = try await self.run { try await self.retryingVictims {
            let rows = try await self.client.query(
                """
                WITH new_repository AS (
                    INSERT INTO repositories (name) VALUES (\(repository.value)) ON CONFLICT (name) DO NOTHING RETURNING id
                ), repository AS (
                    SELECT id FROM new_repository UNION ALL SELECT id FROM repositories WHERE name = \(repository.value)
                ), new_blob AS (
                    INSERT INTO blobs (digest, size, location) VALUES (\(digest), \(blob.size), \(blob.location))
                    ON CONFLICT (digest) DO NOTHING RETURNING size, location
                ), recorded AS (
                    SELECT size, location FROM new_blob
                    UNION ALL
                    SELECT size, location FROM blobs WHERE digest = \(digest) AND NOT EXISTS (SELECT 1 FROM new_blob)
                ), link AS (
                    -- DO UPDATE, not DO NOTHING: it waits for a garbage review holding the link, and
                    -- inserts again if the review deleted it.
                    INSERT INTO repository_blobs (repository_id, digest)
                    SELECT id, \(digest) FROM repository WHERE EXISTS (SELECT 1 FROM recorded) LIMIT 1
                    ON CONFLICT (repository_id, digest) DO UPDATE SET created_at = repository_blobs.created_at
                    RETURNING repository_id
                ), queued AS (
                    -- From `link`, so that the link's row is locked before the queue's (PostgreSQL
                    -- runs unread data-modifying CTEs last to first): the order every linker, mount
                    -- and review keeps, which two of them can then not deadlock in.
                    INSERT INTO gc_queue (repository_id, digest, queued_at)
                    SELECT repository_id, \(digest), (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM link
                    ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = EXCLUDED.queued_at
                )
                SELECT size, location FROM recorded WHERE EXISTS (SELECT 1 FROM repository) LIMIT 1
                """, logger: self.logger
            )
            var recorded: BlobRecord?
            for try await (size, location) in rows.decode((Int64, String).self) where recorded == nil {
                recorded = BlobRecord(digest: blob.digest, size: size, location: location)
            }
            return recorded
        } }
        if let recorded { return recorded }
        return try await self.linkBlobStepByStep(blob, into: repository)
    }

    private func linkBlobStepByStep(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        let logger = self.logger
        return try await self.transaction { connection in
            let id = try await Self.ensureRepository(repository, on: connection, logger: logger)
            try await connection.query(
                """
                INSERT INTO blobs (digest, size, location) VALUES (\(blob.digest.description), \(blob.size), \(blob.location))
                ON CONFLICT (digest) DO NOTHING
                """, logger: logger
            )
            try await connection.query(
                """
                INSERT INTO repository_blobs (repository_id, digest) VALUES (\(id), \(blob.digest.description))
                ON CONFLICT (repository_id, digest) DO UPDATE SET created_at = repository_blobs.created_at
                """, logger: logger
            )
            try await Self.queueForReview(blob.digest.description, repositoryID: id, on: connection, logger: logger)
            let rows = try await connection.query(
                "SELECT size, location FROM blobs WHERE digest = \(blob.digest.description)", logger: logger
            )
            for try await (size, location) in rows.decode((Int64, String).self) {
                return BlobRecord(digest: blob.digest, size: size, location: location)
            }
            throw RegistryError(.unknown, "blob row vanished")
        }
    }

    static func ensureRepository(_ repository: RepositoryName, on connection: PostgresConnection, logger: Logger)
        async throws -> Int64
    {
        try await connection.query(
            "INSERT INTO repositories (name) VALUES (\(repository.value)) ON CONFLICT (name) DO NOTHING", logger: logger
        )
        guard let id = try await Self.repositoryID(repository, on: connection, logger: logger) else {
            throw RegistryError(.unknown, "repository row vanished")
        }
        return id
    }

    static func repositoryID(_ repository: RepositoryName, on connection: PostgresConnection, logger: Logger)
        async throws -> Int64?
    {
        let rows = try await connection.query("SELECT id FROM repositories WHERE name = \(repository.value)", logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        return nil
    }

    // MARK: Manifests

    func putManifest(_ put: ManifestPut, rules: TagRules) async throws {
        // A garbage review may remove the manifest (an untagged child of a deleted index) between
        // this push finding it stored and referencing it: the foreign key refuses, and the push
        // stores it again.
        for attempt in 1...3 {
            do {
                return try await self.storeManifest(put, rules: rules)
            } catch where attempt < 3 && Self.isMissingBlobRow(error) {
                continue
            }
        }
    }

    private func storeManifest(_ put: ManifestPut, rules: TagRules) async throws {
        let logger = self.logger
        try await self.transaction { connection in
            let id = try await Self.ensureRepository(put.repository, on: connection, logger: logger)
            try await Self.lockReferences(of: put, repositoryID: id, on: connection, logger: logger)
            let annotations = try Self.referrerAnnotations(of: put.document)
            try await connection.query(
                """
                INSERT INTO manifests
                    (repository_id, digest, media_type, content, size, subject, artifact_type, annotations, image_id)
                VALUES (\(id), \(put.digest.description), \(put.document.mediaType), \(put.bytes),
                        \(Int64(put.bytes.readableBytes)), \(put.document.subject?.description),
                        \(put.document.artifactType), \(annotations)::jsonb,
                        \((put.document.config ?? put.digest).description))
                ON CONFLICT DO NOTHING
                """, logger: logger
            )
            let references = Array(Set((put.document.blobs + put.document.manifests).map(\.description)))
            if !references.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO manifest_references (repository_id, manifest_digest, referenced_digest)
                    SELECT \(id), \(put.digest.description), unnest(\(references)::text[])
                    ON CONFLICT DO NOTHING
                    """, logger: logger
                )
            }
            try await connection.query(
                """
                UPDATE manifests SET total_size = size
                    + (SELECT COALESCE(SUM(b.size), 0) FROM manifest_references mr
                       JOIN blobs b ON b.digest = mr.referenced_digest
                       WHERE mr.repository_id = \(id) AND mr.manifest_digest = \(put.digest.description))
                    + (SELECT COALESCE(SUM(c.total_size), 0) FROM manifest_references mr
                       JOIN manifests c ON c.repository_id = mr.repository_id AND c.digest = mr.referenced_digest
                       WHERE mr.repository_id = \(id) AND mr.manifest_digest = \(put.digest.description))
                WHERE repository_id = \(id) AND digest = \(put.digest.description) AND total_size IS NULL
                """, logger: logger
            )
            if let source = put.scmSource {
                try await Self.recordScmSource(source, for: put.digest, in: put.repository, on: connection, logger: logger)
            }
            for tag in put.tags {
                if let event = try await Self.moveTag(
                    tag, to: put, repositoryID: id, rules: rules, on: connection, logger: logger
                ) {
                    try await self.enqueue(event, on: connection)
                }
            }
        }
    }

    /// Checks that every referenced blob and child manifest is in the repository and locks those
    /// rows `FOR SHARE` until commit, so a concurrent delete waits for this push or wins before it.
    private static func lockReferences(
        of put: ManifestPut, repositoryID: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws {
        let blobs = Array(Set(put.document.blobs.map(\.description)))
        if !blobs.isEmpty {
            let rows = try await connection.query(
                """
                SELECT rb.digest, b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                WHERE rb.repository_id = \(repositoryID) AND rb.digest = ANY(\(blobs)::text[]) FOR SHARE OF rb
                """, logger: logger
            )
            var found: [String: Int64] = [:]
            for try await (digest, size) in rows.decode((String, Int64).self) { found[digest] = size }
            if let missing = blobs.sorted().first(where: { found[$0] == nil }) {
                throw RegistryError(
                    .manifestBlobUnknown, "blob \(missing) is not in \(put.repository)", detail: ["digest": missing]
                )
            }
            for (digest, stored) in found {
                if let declared = put.document.declaredSizes?[digest], let blob = Digest(digest) {
                    try ManifestPut.checkSize(of: blob, declared: declared, stored: stored)
                }
            }
        }
        let children = Array(Set(put.document.manifests.map(\.description)))
        if !children.isEmpty {
            let rows = try await connection.query(
                """
                SELECT digest FROM manifests
                WHERE repository_id = \(repositoryID) AND digest = ANY(\(children)::text[]) FOR SHARE
                """, logger: logger
            )
            var found = Set<String>()
            for try await digest in rows.decode(String.self) { found.insert(digest) }
            if let missing = children.sorted().first(where: { !found.contains($0) }) {
                throw RegistryError(
                    .manifestBlobUnknown, "manifest \(missing) is not in \(put.repository)", detail: ["digest": missing]
                )
            }
        }
    }

    private static func referrerAnnotations(of document: ManifestDocument) throws -> String? {
        guard document.subject != nil, let annotations = document.annotations, !annotations.isEmpty else { return nil }
        return String(decoding: try JSONEncoder().encode(annotations), as: UTF8.self)
    }

    /// Creates the tag, or moves it: the insert waits for a concurrent insert of the same tag to
    /// finish, and the row lock makes the comparison and the update one step; `rules` decide.
    /// Returns the event to announce, nil when nothing changed.
    private static func moveTag(
        _ tag: Contracts.Tag, to put: ManifestPut, repositoryID: Int64, rules: TagRules, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> TagEvent? {
        let digest = put.digest.description
        let inserted = try await connection.query(
            """
            INSERT INTO tags (repository_id, name, manifest_digest, pushed_by)
            VALUES (\(repositoryID), \(tag.value), \(digest), \(put.pushedBy))
            ON CONFLICT (repository_id, name) DO NOTHING RETURNING 1
            """, logger: logger
        )
        for try await _ in inserted.decode(Int.self) {
            return try rules.move(tag, for: put, current: nil)
        }
        let rows = try await connection.query(
            "SELECT manifest_digest FROM tags WHERE repository_id = \(repositoryID) AND name = \(tag.value) FOR UPDATE",
            logger: logger
        )
        var current: Digest?
        for try await value in rows.decode(String.self) { current = Digest(value) }
        // A row deleted between the insert and the lock: nothing to move.
        guard let current, let event = try rules.move(tag, for: put, current: current) else { return nil }
        try await connection.query(
            """
            UPDATE tags SET manifest_digest = \(digest), updated_at = clock_timestamp(), pushed_by = \(put.pushedBy)
            WHERE repository_id = \(repositoryID) AND name = \(tag.value)
            """, logger: logger
        )
        return event
    }

    func manifest(_ digest: Digest, in repository: RepositoryName) async throws -> ManifestRecord? {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT m.media_type, m.content FROM manifests m JOIN repositories r ON r.id = m.repository_id
                WHERE r.name = \(repository.value) AND m.digest = \(digest.description)
                """, logger: self.logger
            )
            var record: ManifestRecord?
            for try await (mediaType, content) in rows.decode((String, ByteBuffer).self) where record == nil {
                record = ManifestRecord(digest: digest, mediaType: mediaType, bytes: content)
            }
            return record
        }
    }

    func manifestDigest(tagged tag: Contracts.Tag, in repository: RepositoryName) async throws -> Digest? {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id
                WHERE r.name = \(repository.value) AND t.name = \(tag.value)
                """, logger: self.logger
            )
            var digest: Digest?
            for try await value in rows.decode(String.self) where digest == nil { digest = Digest(value) }
            return digest
        }
    }

    /// Tag and manifest in one round trip.
    func manifest(tagged tag: Contracts.Tag, in repository: RepositoryName) async throws -> ManifestRecord? {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT m.digest, m.media_type, m.content FROM tags t
                JOIN repositories r ON r.id = t.repository_id
                JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
                WHERE r.name = \(repository.value) AND t.name = \(tag.value)
                """, logger: self.logger
            )
            var record: ManifestRecord?
            for try await (digest, mediaType, content) in rows.decode((String, String, ByteBuffer).self) where record == nil {
                guard let digest = Digest(digest) else { continue }
                record = ManifestRecord(digest: digest, mediaType: mediaType, bytes: content)
            }
            return record
        }
    }

    func newestTagDigest(in repository: RepositoryName) async throws -> Digest? {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id
                WHERE r.name = \(repository.value) ORDER BY t.created_at DESC, t.name DESC LIMIT 1
                """, logger: self.logger
            )
            for try await value in rows.decode(String.self) { return Digest(value) }
            return nil
        }
    }
}
