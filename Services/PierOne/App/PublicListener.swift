import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import Runtime
import ServiceLifecycle

/// The gateway's public listener: plain HTTP/1.1, or with `HTTP_TLS_CERT` and `HTTP_TLS_KEY` TLS
/// 1.2+ offering HTTP/2 and HTTP/1.1 by ALPN, its certificate re-read while it runs (the service
/// returned with it).
func publicListener(_ configuration: ServeConfiguration, logger: Logger) throws -> (server: HTTPServerBuilder, services: [any Service]) {
    guard let settings = configuration.publicTLS else { return (.http1(), []) }
    let store = try CertificateStore(settings)
    let server: HTTPServerBuilder
    do {
        server = try .http2Upgrade(tlsConfiguration: store.serverConfiguration())
    } catch {
        throw ConfigurationError("HTTP_TLS_CERT", "cannot use this certificate and key: \(error)")
    }
    logger.info(
        "TLS on the public listener, HTTP/2 and HTTP/1.1",
        metadata: [
            "certificate": "\(store.summary)",
            "clientCertificates": "\(settings.clientCAPath.map { "required, from \($0)" } ?? "not asked for")",
            "reloadInterval": "\(settings.reloadInterval)",
        ]
    )
    let reloader = CertificateReloader(store: store, logger: logger)
    reloader.warnIfExpiring()
    return (server, [reloader])
}

/// Checks the certificate files every `HTTP_TLS_RELOAD_INTERVAL`: a changed, usable pair is used
/// for every new connection from then on; a broken one is logged once and the previous one kept.
struct CertificateReloader: Service, CustomStringConvertible {
    var description: String { "CertificateReloader(\(self.store.settings.certificatePath))" }

    let store: CertificateStore
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: self.store.settings.reloadInterval)
                    self.check()
                }
            }
        } catch is CancellationError {
            return
        }
    }

    func check() {
        switch self.store.reload() {
        case .unchanged:
            return
        case .replaced(let summary):
            self.logger.info("new TLS certificate in use for new connections", metadata: ["certificate": "\(summary)"])
            self.warnIfExpiring()
        case .refused(let problem):
            self.logger.error(
                "the TLS certificate files changed but cannot be used; the previous certificate stays in use",
                metadata: ["problem": "\(problem)", "certificate": "\(self.store.summary)"]
            )
        }
    }

    /// A warning when the certificate in use has expired or expires within a week.
    func warnIfExpiring() {
        let remaining = self.store.notValidAfter.timeIntervalSinceNow
        guard remaining < 7 * 86_400 else { return }
        self.logger.warning(
            remaining < 0 ? "the TLS certificate has expired: clients will refuse to connect" : "the TLS certificate expires within a week",
            metadata: ["certificate": "\(self.store.summary)", "file": "\(self.store.settings.certificatePath)"]
        )
    }
}

/// Whether an address only this machine can reach (a plain listener there is not a risk to tokens).
func isLoopback(_ address: String) -> Bool {
    address == "localhost" || address == "::1" || address.hasPrefix("127.")
}
