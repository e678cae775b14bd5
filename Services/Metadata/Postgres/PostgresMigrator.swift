import Logging
import PostgresNIO

/// Applies `PostgresSchema.migrations` in one transaction under an advisory lock, so replicas
/// starting at the same moment migrate once; refuses a database newer than the code.
enum PostgresMigrator {
    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        do {
            try await self.apply(client, logger: logger)
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.beginError ?? error.commitError ?? error
        }
    }

    private static func apply(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", logger: logger
            )
            let rows = try await connection.query("SELECT coalesce(max(version), 0) FROM schema_version", logger: logger)
            var current = 0
            for try await version in rows.decode(Int.self) { current = version }
            let latest = PostgresSchema.migrations.count
            guard current <= latest else {
                throw MigrationError.databaseNewerThanCode(database: current, code: latest)
            }
            for version in (current + 1)..<(latest + 1) {
                for statement in PostgresSchema.migrations[version - 1] {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_version (version) VALUES (\(version))", logger: logger)
                logger.info("applied metadata migration", metadata: ["version": "\(version)"])
            }
        }
    }
}
