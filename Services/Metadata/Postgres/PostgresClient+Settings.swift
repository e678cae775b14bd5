import NIOSSL
import PostgresNIO

extension PostgresClient {
    /// A connection pool for `settings`: bounded, with the statement timeout set per connection.
    static func make(_ settings: PostgresSettings, logger: Logger) throws -> PostgresClient {
        let tls: PostgresClient.Configuration.TLS = switch (settings.sslMode, settings.tlsConfiguration()) {
        case (.disable, _), (_, nil): .disable
        case (.prefer, let configuration?): .prefer(configuration)
        case (_, let configuration?): .require(configuration)
        }
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password,
            database: settings.database, tls: tls
        )
        configuration.options.maximumConnections = settings.maximumConnections
        // postgres-nio's pool starts a timer task each time a connection turns idle (its idle
        // timeout, 60 s, and its keep-alive, 30 s), and each one lives until it fires: under load
        // that is thousands of sleeping tasks a second, and memory grew by ~40 MiB per 15,000
        // manifest GETs (measured with heaptrack; docs/performance.md). A fixed pool without
        // keep-alive queries starts no timers: every connection is opened once and kept, and a
        // broken one is replaced when a query fails on it.
        configuration.options.minimumConnections = settings.maximumConnections
        configuration.options.keepAliveBehavior = nil
        configuration.options.connectTimeout = .seconds(Int64(min(settings.timeout, 10)))
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", String(settings.timeout * 1000)),
            ("application_name", "pierone"),
        ]
        return PostgresClient(configuration: configuration, backgroundLogger: logger)
    }
}

extension PostgresSettings {
    /// libpq's `sslmode` semantics: `prefer` and `require` encrypt without checking the
    /// certificate, `verify-ca` checks the chain, `verify-full` also the host name. Nil for `disable`.
    package func tlsConfiguration() -> TLSConfiguration? {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root = self.rootCertificatePath {
            tls.trustRoots = .file(root)
        }
        switch self.sslMode {
        case .disable: return nil
        case .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        return tls
    }
}
