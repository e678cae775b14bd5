import Contracts
import Logging
import NIOCore
import SQLiteNIO
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Repositories an open write transaction changed, collected by the writer's triggers.
final class ChangedRepositories: Sendable {
    let names = Mutex(Set<String>())
}

/// The embedded metadata store: one SQLite file in WAL mode.
///
/// One writer connection behind a lock runs every transaction (`BEGIN IMMEDIATE`), so decisions
/// such as tag immutability are made on a state nobody else changes meanwhile; reads use their
/// own connections and see the last committed state.
final class SQLiteMetadataStore: MetadataStore {
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let nextReader = Mutex(0)
    private let writeLock = AsyncMutex()
    /// Notification sinks: each tag change writes one outbox row per sink.
    let outboxSinks: [String]
    /// Where committed changes that can make a cached answer wrong are logged.
    let changes: ChangeLog
    /// Repositories the open write transaction changed (the writer's triggers collect them);
    /// logged once it commits, so that no cache drops an entry and reloads the old state.
    private let changed: ChangedRepositories

    private init(writer: SQLiteConnection, readers: [SQLiteConnection], outboxSinks: [String], changes: ChangeLog, changed: ChangedRepositories) {
        self.writer = writer
        self.readers = readers
        self.outboxSinks = outboxSinks
        self.changes = changes
        self.changed = changed
    }

    /// Opens (creating and migrating) the database at `path`.
    static func open(
        path: String, readers readerCount: Int = 2, outboxSinks: [String] = [], changes: ChangeLog = ChangeLog(source: .local),
        logger: Logger
    ) async throws -> SQLiteMetadataStore {
        let writer = try await Self.connect(path: path, logger: logger)
        let changed = ChangedRepositories()
        do {
            try await SQLiteMigrator.migrate(writer, logger: logger)
            try await Self.announceChanges(on: writer, into: changed)
        } catch {
            try? await writer.close()
            throw error
        }
        var readers: [SQLiteConnection] = []
        for _ in 0..<readerCount {
            readers.append(try await Self.connect(path: path, logger: logger))
        }
        return SQLiteMetadataStore(writer: writer, readers: readers, outboxSinks: outboxSinks, changes: changes, changed: changed)
    }

    /// Triggers of the writer connection alone (`TEMP`) that collect the repositories whose
    /// cached answers a statement invalidates: a tag moved or deleted, a manifest deleted, a blob
    /// unlinked (as PostgreSQL's migration 5 announces them).
    private static func announceChanges(on writer: SQLiteConnection, into changed: ChangedRepositories) async throws {
        try await writer.install(customFunction: SQLiteCustomFunction("pierone_changed", argumentCount: 1, indirect: true) { values in
            if let name = values.first?.string { changed.names.withLock { _ = $0.insert(name) } }
            return nil
        })
        let name = "(SELECT name FROM main.repositories WHERE id = OLD.repository_id)"
        for trigger in [
            "CREATE TEMP TRIGGER tags_changed AFTER UPDATE OF manifest_digest ON main.tags BEGIN SELECT pierone_changed(\(name)); END",
            "CREATE TEMP TRIGGER tags_deleted AFTER DELETE ON main.tags BEGIN SELECT pierone_changed(\(name)); END",
            "CREATE TEMP TRIGGER manifests_deleted AFTER DELETE ON main.manifests BEGIN SELECT pierone_changed(\(name)); END",
            "CREATE TEMP TRIGGER links_deleted AFTER DELETE ON main.repository_blobs BEGIN SELECT pierone_changed(\(name)); END",
        ] {
            _ = try await writer.query(trigger)
        }
    }

    /// A plain connection to the database file, for tools and tests.
    static func rawConnection(path: String) async throws -> SQLiteConnection {
        try await SQLiteConnection.open(storage: .file(path: path))
    }

    private static func connect(path: String, logger: Logger) async throws -> SQLiteConnection {
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON",
                       "PRAGMA busy_timeout=10000"] {
            _ = try await connection.query(pragma)
        }
        return connection
    }

    /// Connections the store holds (readers and the writer).
    var connectionCount: Int { self.readers.count + 1 }

    func ping() async throws {
        _ = try await self.reader.query("SELECT 1")
    }

    func close() async throws {
        for connection in self.readers + [self.writer] {
            try await connection.close()
        }
    }

    var reader: SQLiteConnection {
        let index = self.nextReader.withLock { value in
            value = (value + 1) % self.readers.count
            return value
        }
        return self.readers[index]
    }

    /// Runs `body` in a write transaction on the writer connection.
    func transaction<T: Sendable>(_ body: @Sendable (SQLiteConnection) async throws -> T) async throws -> T {
        try await self.writeLock.withLock {
            _ = try await self.writer.query("BEGIN IMMEDIATE")
            do {
                let result = try await body(self.writer)
                _ = try await self.writer.query("COMMIT")
                self.logChanges(committed: true)
                return result
            } catch {
                _ = try? await self.writer.query("ROLLBACK")
                self.logChanges(committed: false)
                throw error
            }
        }
    }

    /// Logs (after a commit) or forgets (after a rollback) what the transaction's triggers collected.
    private func logChanges(committed: Bool) {
        let changed = self.changed.names.withLock { changed in
            defer { changed.removeAll() }
            return changed
        }
        guard committed else { return }
        for name in changed.sorted() {
            if let repository = RepositoryName(name) { self.changes.record(repository) } else { self.changes.recordGap() }
        }
    }

    static var now: Int { Int(Date().timeIntervalSince1970 * 1000) }

    // MARK: Blobs

    func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord? {
        let rows = try await self.reader.query(
            """
            SELECT b.size, b.location FROM blobs b
            JOIN repository_blobs rb ON rb.digest = b.digest
            JOIN repositories r ON r.id = rb.repository_id
            WHERE r.name = ?1 AND b.digest = ?2
            """,
            [.text(repository.value), .text(digest.description)]
        )
        guard let row = rows.first, let size = row.column("size")?.integer,
              let location = row.column("location")?.string
        else { return nil }
        return BlobRecord(digest: digest, size: Int64(size), location: location)
    }

    func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        try await self.transaction { connection in
            let repositoryID = try await Self.ensureRepository(repository, on: connection)
            // The row this upload made, or (when the digest was recorded before) the first one.
            var rows = try await connection.query(
                """
                INSERT INTO blobs (digest, size, location, created_at) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT (digest) DO NOTHING RETURNING size, location
                """,
                [.text(blob.digest.description), .integer(Int(blob.size)), .text(blob.location), .integer(Self.now)]
            )
            _ = try await connection.query(
                "INSERT OR IGNORE INTO repository_blobs (repository_id, digest, created_at) VALUES (?1, ?2, ?3)",
                [.integer(repositoryID), .text(blob.digest.description), .integer(Self.now)]
            )
            // Garbage unless a manifest comes to reference it within the grace period.
            try await Self.queueForReview(blob.digest.description, repositoryID: repositoryID, at: Self.now, on: connection)
            if rows.isEmpty {
                rows = try await connection.query("SELECT size, location FROM blobs WHERE digest = ?1", [.text(blob.digest.description)])
            }
            guard let row = rows.first, let size = row.column("size")?.integer, let location = row.column("location")?.string
            else { throw RegistryError(.unknown, "blob row vanished") }
            return BlobRecord(digest: blob.digest, size: Int64(size), location: location)
        }
    }

    /// The id of `repository`, or nil when it does not exist.
    static func repositoryID(_ repository: RepositoryName, on connection: SQLiteConnection) async throws -> Int? {
        let rows = try await connection.query("SELECT id FROM repositories WHERE name = ?1", [.text(repository.value)])
        return rows.first?.column("id")?.integer
    }

    static func ensureRepository(_ repository: RepositoryName, on connection: SQLiteConnection) async throws
        -> Int
    {
        // Inside the writer's transaction: nobody adds the row between the look-up and the insert.
        if let id = try await Self.repositoryID(repository, on: connection) { return id }
        let rows = try await connection.query(
            "INSERT INTO repositories (name, created_at) VALUES (?1, ?2) RETURNING id",
            [.text(repository.value), .integer(Self.now)]
        )
        guard let id = rows.first?.column("id")?.integer else {
            throw RegistryError(.unknown, "repository row vanished")
        }
        return id
    }

    // MARK: Manifests

    func putManifest(_ put: ManifestPut, rules: TagRules) async throws {
        try await self.transaction { connection in
            let repositoryID = try await Self.ensureRepository(put.repository, on: connection)
            try await Self.checkReferences(of: put, repositoryID: repositoryID, on: connection)
            let digest = put.digest.description
            _ = try await connection.query(
                """
                INSERT OR IGNORE INTO manifests
                    (repository_id, digest, media_type, content, size, subject, artifact_type, created_at, annotations,
                     image_id)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                """,
                [
                    .integer(repositoryID), .text(digest), .text(put.document.mediaType), .blob(put.bytes),
                    .integer(put.bytes.readableBytes), put.document.subject.map { .text($0.description) } ?? .null,
                    put.document.artifactType.map { .text($0) } ?? .null, .integer(Self.now),
                    try Self.referrerAnnotations(of: put.document), .text((put.document.config ?? put.digest).description),
                ]
            )
            for reference in Set(put.document.blobs + put.document.manifests) {
                _ = try await connection.query(
                    """
                    INSERT OR IGNORE INTO manifest_references (repository_id, manifest_digest, referenced_digest)
                    VALUES (?1, ?2, ?3)
                    """,
                    [.integer(repositoryID), .text(digest), .text(reference.description)]
                )
            }
            _ = try await connection.query(Self.totalSizeUpdate, [.integer(repositoryID), .text(digest)])
            if let source = put.scmSource {
                try await Self.recordScmSource(source, for: put.digest, in: put.repository, on: connection)
            }
            for tag in put.tags {
                if let event = try await Self.moveTag(
                    tag, to: put, repositoryID: repositoryID, rules: rules, on: connection
                ) {
                    try await self.enqueue(event, on: connection)
                }
            }
        }
    }

    /// Sets a new manifest's `total_size`: its bytes, the blobs it references, and the totals of
    /// the child manifests of an index.
    static let totalSizeUpdate = """
        UPDATE manifests SET total_size = size
            + (SELECT COALESCE(SUM(b.size), 0) FROM manifest_references mr JOIN blobs b ON b.digest = mr.referenced_digest
               WHERE mr.repository_id = ?1 AND mr.manifest_digest = ?2)
            + (SELECT COALESCE(SUM(c.total_size), 0) FROM manifest_references mr
               JOIN manifests c ON c.repository_id = mr.repository_id AND c.digest = mr.referenced_digest
               WHERE mr.repository_id = ?1 AND mr.manifest_digest = ?2)
        WHERE repository_id = ?1 AND digest = ?2 AND total_size IS NULL
        """

    /// Annotations are kept (as JSON) only for manifests with a subject: the referrers API serves them.
    private static func referrerAnnotations(of document: ManifestDocument) throws -> SQLiteData {
        guard document.subject != nil, let annotations = document.annotations, !annotations.isEmpty else { return .null }
        return .text(String(decoding: try JSONEncoder().encode(annotations), as: UTF8.self))
    }

    private static func checkReferences(of put: ManifestPut, repositoryID: Int, on connection: SQLiteConnection)
        async throws
    {
        for blob in Set(put.document.blobs) {
            let rows = try await connection.query(
                """
                SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                WHERE rb.repository_id = ?1 AND rb.digest = ?2
                """,
                [.integer(repositoryID), .text(blob.description)]
            )
            guard let row = rows.first else {
                throw RegistryError(
                    .manifestBlobUnknown, "blob \(blob) is not in \(put.repository)", detail: ["digest": blob.description]
                )
            }
            if let declared = put.document.declaredSizes?[blob.description], let stored = row.column("size")?.integer {
                try ManifestPut.checkSize(of: blob, declared: declared, stored: Int64(stored))
            }
        }
        for manifest in Set(put.document.manifests) {
            let rows = try await connection.query(
                "SELECT 1 FROM manifests WHERE repository_id = ?1 AND digest = ?2",
                [.integer(repositoryID), .text(manifest.description)]
            )
            guard !rows.isEmpty else {
                throw RegistryError(
                    .manifestBlobUnknown, "manifest \(manifest) is not in \(put.repository)",
                    detail: ["digest": manifest.description]
                )
            }
        }
    }

    /// Creates or moves the tag as `rules` decide; the event to announce, nil when nothing changed.
    private static func moveTag(
        _ tag: Tag, to put: ManifestPut, repositoryID: Int, rules: TagRules, on connection: SQLiteConnection
    ) async throws -> TagEvent? {
        let digest = put.digest.description
        let rows = try await connection.query(
            "SELECT manifest_digest FROM tags WHERE repository_id = ?1 AND name = ?2",
            [.integer(repositoryID), .text(tag.value)]
        )
        let current = rows.first?.column("manifest_digest")?.string.flatMap { Digest($0) }
        guard let event = try rules.move(tag, for: put, current: current) else { return nil }
        let pushedBy: SQLiteData = put.pushedBy.map { .text($0) } ?? .null
        if current == nil {
            _ = try await connection.query(
                """
                INSERT INTO tags (repository_id, name, manifest_digest, created_at, updated_at, pushed_by)
                VALUES (?1, ?2, ?3, ?4, ?4, ?5)
                """,
                [.integer(repositoryID), .text(tag.value), .text(digest), .integer(Self.now), pushedBy]
            )
        } else {
            _ = try await connection.query(
                """
                UPDATE tags SET manifest_digest = ?3, updated_at = ?4, pushed_by = ?5
                WHERE repository_id = ?1 AND name = ?2
                """,
                [.integer(repositoryID), .text(tag.value), .text(digest), .integer(Self.now), pushedBy]
            )
        }
        return event
    }

    func manifest(_ digest: Digest, in repository: RepositoryName) async throws -> ManifestRecord? {
        let rows = try await self.reader.query(
            """
            SELECT m.media_type, m.content FROM manifests m JOIN repositories r ON r.id = m.repository_id
            WHERE r.name = ?1 AND m.digest = ?2
            """,
            [.text(repository.value), .text(digest.description)]
        )
        guard let row = rows.first, let mediaType = row.column("media_type")?.string else { return nil }
        let bytes = row.column("content")?.blob ?? ByteBuffer()
        return ManifestRecord(digest: digest, mediaType: mediaType, bytes: bytes)
    }

    func manifestDigest(tagged tag: Tag, in repository: RepositoryName) async throws -> Digest? {
        let rows = try await self.reader.query(
            """
            SELECT t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id
            WHERE r.name = ?1 AND t.name = ?2
            """,
            [.text(repository.value), .text(tag.value)]
        )
        return rows.first?.column("manifest_digest")?.string.flatMap { Digest($0) }
    }

    func newestTagDigest(in repository: RepositoryName) async throws -> Digest? {
        let rows = try await self.reader.query(
            """
            SELECT t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id
            WHERE r.name = ?1 ORDER BY t.created_at DESC, t.name DESC LIMIT 1
            """,
            [.text(repository.value)]
        )
        return rows.first?.column("manifest_digest")?.string.flatMap { Digest($0) }
    }

    // MARK: Listings

    func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>? {
        let reader = self.reader
        let exists = try await reader.query("SELECT id FROM repositories WHERE name = ?1", [.text(repository.value)])
        guard let id = exists.first?.column("id")?.integer else { return nil }
        let rows = try await reader.query(
            "SELECT name FROM tags WHERE repository_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
            [.integer(id), .text(page.after ?? ""), .integer(page.effectiveLimit + 1)]
        )
        return Self.page(rows.compactMap { $0.column("name")?.string }, limit: page.effectiveLimit)
    }

    func repositories(page: PageRequest) async throws -> Page<String> {
        let rows = try await self.reader.query(
            "SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2",
            [.text(page.after ?? ""), .integer(page.effectiveLimit + 1)]
        )
        return Self.page(rows.compactMap { $0.column("name")?.string }, limit: page.effectiveLimit)
    }

    private static func page(_ names: [String], limit: Int) -> Page<String> {
        Page(items: Array(names.prefix(limit)), hasMore: names.count > limit)
    }
}
