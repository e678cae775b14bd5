import Contracts
import Logging
import SQLiteNIO

/// Applies `SQLiteSchema.migrations` in one transaction and refuses a database newer than the code.
enum SQLiteMigrator {
    static func migrate(_ connection: SQLiteConnection, logger: Logger) async throws {
        _ = try await connection.query("BEGIN IMMEDIATE")
        do {
            _ = try await connection.query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            let rows = try await connection.query("SELECT max(version) AS version FROM schema_version")
            let current = rows.first?.column("version")?.integer ?? 0
            let latest = SQLiteSchema.migrations.count
            guard current <= latest else {
                throw MigrationError.databaseNewerThanCode(database: current, code: latest)
            }
            for version in (current + 1)..<(latest + 1) {
                for statement in SQLiteSchema.migrations[version - 1] {
                    _ = try await connection.query(statement)
                }
                _ = try await connection.query("INSERT INTO schema_version (version) VALUES (?1)", [.integer(version)])
                logger.info("applied metadata migration", metadata: ["version": "\(version)"])
            }
            _ = try await connection.query("COMMIT")
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw error
        }
    }
}
