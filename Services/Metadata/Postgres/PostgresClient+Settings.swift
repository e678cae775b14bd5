import NIOSSL
import PostgresNIO

extension PostgresClient {
    /// A connection pool for `settings`: bounded, with the statement timeout set per connection.
    static func make(_ settings: PostgresSettings, logger: Logger) throws -> PostgresClient {
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password,
            database: settings.database, tls: try Self.tls(settings)
        )
        configuration.options.maximumConnections = settings.maximumConnections
        configuration.options.connectTimeout = .seconds(Int64(min(settings.timeout, 10)))
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", String(settings.timeout * 1000)),
            ("application_name", "pierone"),
        ]
        return PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    /// libpq's `sslmode` semantics: `require` encrypts without checking the certificate,
    /// `verify-ca` checks the chain, `verify-full` also the host name.
    private static func tls(_ settings: PostgresSettings) throws -> PostgresClient.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root = settings.rootCertificatePath {
            tls.trustRoots = .file(root)
        }
        switch settings.sslMode {
        case .disable:
            return .disable
        case .prefer:
            tls.certificateVerification = .none
            return .prefer(tls)
        case .require:
            tls.certificateVerification = .none
            return .require(tls)
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
            return .require(tls)
        case .verifyFull:
            tls.certificateVerification = .fullVerification
            return .require(tls)
        }
    }
}
