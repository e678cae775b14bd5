import Foundation
import Runtime

/// Where and how to reach PostgreSQL, from the environment.
///
/// Two forms are read: `DATABASE_URL` (`postgres://user:pass@host:port/db?sslmode=…`), and Pier
/// One's `DB_SUBNAME` (`//host:port/db?ssl=true`) with `DB_USER`, `DB_PASSWORD`. `PGSSLMODE`
/// (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) applies to both unless the URL names
/// a mode; `PGSSLROOTCERT` is the CA bundle for the verifying modes (default: the system's).
package struct PostgresSettings: Sendable, Equatable {
    package enum SSLMode: String, Sendable, CaseIterable {
        case disable
        case prefer
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    package var host: String
    package var port: Int
    package var database: String
    package var username: String
    package var password: String?
    package var sslMode: SSLMode
    package var rootCertificatePath: String?
    /// `DB_MAX_CONNECTIONS`: connections this process may open.
    package var maximumConnections: Int
    /// `DB_TIMEOUT`: seconds a statement (and the wait for a connection) may take.
    package var timeout: Int

    package init(
        host: String, port: Int = 5432, database: String, username: String, password: String?,
        sslMode: SSLMode = .prefer, rootCertificatePath: String? = nil, maximumConnections: Int = 10, timeout: Int = 10
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.sslMode = sslMode
        self.rootCertificatePath = rootCertificatePath
        self.maximumConnections = maximumConnections
        self.timeout = timeout
    }

    /// The settings from the environment, or nil when neither `DATABASE_URL` nor `DB_SUBNAME` is set.
    package static func from(_ environment: EnvironmentReader) throws -> PostgresSettings? {
        var settings: PostgresSettings
        var modeFromURL: SSLMode?
        if let url = environment.string("DATABASE_URL") {
            (settings, modeFromURL) = try Self.parseURL(url)
        } else if let subname = environment.string("DB_SUBNAME") {
            (settings, modeFromURL) = try Self.parseSubname(subname)
            settings.username = environment.string("DB_USER", default: "postgres")
            settings.password = environment.string("DB_PASSWORD") ?? "postgres"
        } else {
            return nil
        }
        if let mode = modeFromURL {
            settings.sslMode = mode
        } else if let raw = environment.string("PGSSLMODE") {
            guard let mode = SSLMode(rawValue: raw) else {
                throw ConfigurationError(
                    "PGSSLMODE", "\"\(raw)\" is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            settings.sslMode = mode
        }
        settings.rootCertificatePath = environment.string("PGSSLROOTCERT")
        settings.maximumConnections = try environment.integer("DB_MAX_CONNECTIONS", default: 10, range: 1...1000)
        settings.timeout = try environment.integer("DB_TIMEOUT", default: 10, range: 1...3600)
        return settings
    }

    /// `postgres://user:pass@host:port/db?sslmode=…` (also `postgresql://`).
    static func parseURL(_ string: String) throws -> (PostgresSettings, SSLMode?) {
        guard let components = URLComponents(string: string),
              components.scheme == "postgres" || components.scheme == "postgresql",
              let host = components.host, !host.isEmpty
        else {
            throw ConfigurationError("DATABASE_URL", "expected postgres://user:password@host:port/database")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw ConfigurationError("DATABASE_URL", "names no database") }
        let mode = try Self.mode(components.queryItems?.first { $0.name == "sslmode" }?.value, variable: "DATABASE_URL")
        let settings = PostgresSettings(
            host: host, port: components.port ?? 5432, database: database,
            username: components.user?.removingPercentEncoding ?? "postgres",
            password: components.password?.removingPercentEncoding
        )
        return (settings, mode)
    }

    /// Pier One's `//host:port/db[?ssl=true]`.
    static func parseSubname(_ string: String) throws -> (PostgresSettings, SSLMode?) {
        guard string.hasPrefix("//"), let components = URLComponents(string: "postgres:" + string),
              let host = components.host, !host.isEmpty
        else {
            throw ConfigurationError("DB_SUBNAME", "expected //host:port/database, e.g. //localhost:5432/pierone")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw ConfigurationError("DB_SUBNAME", "names no database") }
        let ssl = components.queryItems?.first { $0.name == "ssl" }?.value
        let mode: SSLMode? = ssl == "true" ? .require : (ssl == "false" ? .disable : nil)
        let settings = PostgresSettings(
            host: host, port: components.port ?? 5432, database: database, username: "postgres", password: nil
        )
        return (settings, mode)
    }

    private static func mode(_ raw: String?, variable: String) throws -> SSLMode? {
        guard let raw else { return nil }
        guard let mode = SSLMode(rawValue: raw) else {
            throw ConfigurationError(variable, "sslmode \"\(raw)\" is not one of disable, prefer, require, verify-ca, verify-full")
        }
        return mode
    }
}
