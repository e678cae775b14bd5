import Foundation
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// TLS on the public listener: `HTTP_TLS_CERT` (PEM, the server certificate first, then its
/// chain), `HTTP_TLS_KEY` (its PEM private key, unencrypted), optionally `HTTP_TLS_CLIENT_CA`
/// (PEM; only clients presenting a certificate from it get in) and `HTTP_TLS_RELOAD_INTERVAL`
/// (seconds between checks of the two files for a new pair, default 15).
package struct PublicTLS: Sendable {
    package var certificatePath: String
    package var keyPath: String
    package var clientCAPath: String?
    package var reloadInterval: Duration

    package init(certificatePath: String, keyPath: String, clientCAPath: String? = nil, reloadInterval: Duration = .seconds(15)) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        self.reloadInterval = reloadInterval
    }

    /// The settings, or nil for a plain listener; a half-given pair names what is missing.
    package static func from(_ environment: EnvironmentReader) throws -> PublicTLS? {
        let certificate = environment.string("HTTP_TLS_CERT")
        let key = environment.string("HTTP_TLS_KEY")
        let clientCA = environment.string("HTTP_TLS_CLIENT_CA")
        guard let certificate, let key else {
            if certificate != nil { throw ConfigurationError("HTTP_TLS_KEY", "is needed with HTTP_TLS_CERT") }
            if key != nil { throw ConfigurationError("HTTP_TLS_CERT", "is needed with HTTP_TLS_KEY") }
            if clientCA != nil { throw ConfigurationError("HTTP_TLS_CLIENT_CA", "needs HTTP_TLS_CERT and HTTP_TLS_KEY") }
            return nil
        }
        let seconds = try environment.integer("HTTP_TLS_RELOAD_INTERVAL", default: 15, range: 1...3600)
        return PublicTLS(certificatePath: certificate, keyPath: key, clientCAPath: clientCA, reloadInterval: .seconds(seconds))
    }
}

/// The public listener's certificate and key, read from their files at start (a bad pair refuses
/// the start, naming the variable) and again whenever `reload()` finds the files changed: every
/// new handshake gets the pair in use then, so cert-manager or an ACME client can rewrite the files
/// under a running gateway. A new pair that cannot be used is logged and the previous one kept.
package final class CertificateStore: Sendable {
    /// A usable pair and the file contents it came from.
    private struct Pair: Sendable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        var files: Files
        var summary: String
    }

    package enum Reload: Equatable, Sendable {
        /// The files are as they were (or as the last refused attempt found them).
        case unchanged
        /// A new pair is in use; a description of its certificate.
        case replaced(String)
        /// The files changed but do not make a usable pair yet — most often the moment between
        /// writing the certificate and writing the key; the previous pair is kept.
        case pending(String)
        /// The same unusable files as at the previous check: the previous pair stays in use.
        case refused(String)
    }

    package let settings: PublicTLS
    private let clientCA: [NIOSSLCertificate]?
    private let pair: Mutex<Pair>
    /// The contents of the last unusable attempt and whether it was reported as refused, so a
    /// pair caught mid-write is pending once, and a broken pair refused once.
    private let refused = Mutex<(files: Files, reported: Bool)?>(nil)

    /// Reads and checks the files; throws `ConfigurationError` naming the variable at fault.
    package init(_ settings: PublicTLS) throws {
        self.settings = settings
        let files = try Self.read(settings)
        self.pair = Mutex(try Self.pair(from: files, settings))
        if let path = settings.clientCAPath {
            let authorities = (try? NIOSSLCertificate.fromPEMFile(path)) ?? []
            guard !authorities.isEmpty else {
                throw ConfigurationError("HTTP_TLS_CLIENT_CA", "cannot read a PEM certificate from \(path)")
            }
            self.clientCA = authorities
        } else {
            self.clientCA = nil
        }
    }

    /// What the current certificate is (subject, expiry), for logs.
    package var summary: String { self.pair.withLock { $0.summary } }

    /// The current certificate's expiry.
    package var notValidAfter: Date {
        self.pair.withLock { Date(timeIntervalSince1970: TimeInterval($0.chain[0].notValidAfter)) }
    }

    /// The server configuration: TLS 1.2 or later, `h2` and `http/1.1` offered by ALPN, client
    /// certificates required when a client CA is set, and each handshake served the current pair.
    package func serverConfiguration() -> TLSConfiguration {
        let current = self.pair.withLock { $0 }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: current.chain.map { .certificate($0) }, privateKey: .privateKey(current.key)
        )
        tls.minimumTLSVersion = .tlsv12
        // TLS 1.2 with forward secrecy and AEAD only (TLS 1.3's suites all are).
        tls.cipherSuites = "ECDHE+AESGCM:ECDHE+CHACHA20"
        tls.applicationProtocols = ["h2", "http/1.1"]
        if let clientCA = self.clientCA {
            tls.trustRoots = .certificates(clientCA)
            tls.certificateVerification = .noHostnameVerification
            tls.sendCANameList = true
        }
        tls.sslContextCallback = { [self] _, promise in
            let current = self.pair.withLock { $0 }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = current.chain.map { .certificate($0) }
            override.privateKey = .privateKey(current.key)
            promise.succeed(override)
        }
        return tls
    }

    /// Reads the files again; a changed, usable pair replaces the current one.
    package func reload() -> Reload {
        let files: Files
        do {
            files = try Self.read(self.settings)
        } catch {
            // A file missing for a moment (replaced by a rename) is found on the next check.
            return self.refuse(Files(certificate: Data("\(error)".utf8), key: Data()), "\(error)")
        }
        if self.pair.withLock({ $0.files == files }) {
            self.refused.withLock { $0 = nil }
            return .unchanged
        }
        do {
            let next = try Self.pair(from: files, self.settings)
            let now = time(nil)
            guard next.chain[0].notValidAfter > now, next.chain[0].notValidBefore <= now else {
                throw ConfigurationError("HTTP_TLS_CERT", "the new certificate is not valid now (\(next.summary))")
            }
            self.pair.withLock { $0 = next }
            self.refused.withLock { $0 = nil }
            return .replaced(next.summary)
        } catch {
            return self.refuse(files, "\(error)")
        }
    }

    private func refuse(_ files: Files, _ problem: String) -> Reload {
        self.refused.withLock { last in
            guard let previous = last, previous.files == files else {
                last = (files, false)
                return .pending(problem)
            }
            if previous.reported { return .unchanged }
            last = (files, true)
            return .refused(problem)
        }
    }

    /// The two files' bytes, at most 1 MiB each (a PEM chain is a few KiB).
    private struct Files: Equatable, Sendable {
        var certificate: Data
        var key: Data
    }

    private static func read(_ settings: PublicTLS) throws -> Files {
        func read(_ variable: String, _ path: String) throws -> Data {
            // A regular file only (links followed): a FIFO or a device would block the read.
            let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard let type = (try? FileManager.default.attributesOfItem(atPath: target))?[.type] as? FileAttributeType else {
                throw ConfigurationError(variable, "cannot read \(path)")
            }
            guard type == .typeRegular else { throw ConfigurationError(variable, "\(path) is not a regular file") }
            let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard descriptor >= 0 else { throw ConfigurationError(variable, "cannot read \(path)") }
            let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            defer { try? handle.close() }
            let bytes = (try? handle.read(upToCount: (1 << 20) + 1)) ?? Data()
            guard bytes.count <= 1 << 20 else { throw ConfigurationError(variable, "\(path) is larger than 1 MiB") }
            return bytes
        }
        return Files(
            certificate: try read("HTTP_TLS_CERT", settings.certificatePath), key: try read("HTTP_TLS_KEY", settings.keyPath)
        )
    }

    /// Parses and checks a pair: a certificate chain, a private key, and the key matching the
    /// first certificate (BoringSSL refuses a context whose key does not match).
    private static func pair(from files: Files, _ settings: PublicTLS) throws -> Pair {
        let chain = (try? NIOSSLCertificate.fromPEMBytes(Array(files.certificate))) ?? []
        guard let leaf = chain.first else {
            throw ConfigurationError("HTTP_TLS_CERT", "cannot read a PEM certificate from \(settings.certificatePath)")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: Array(files.key), format: .pem)
        } catch {
            throw ConfigurationError("HTTP_TLS_KEY", "cannot read an unencrypted PEM private key from \(settings.keyPath)")
        }
        do {
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
        } catch {
            throw ConfigurationError(
                "HTTP_TLS_KEY", "the key in \(settings.keyPath) does not match the certificate in \(settings.certificatePath) (HTTP_TLS_CERT)"
            )
        }
        let subject = leaf.description
        let expiry = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        return Pair(chain: chain, key: key, files: files, summary: "\(subject), valid until \(expiry)")
    }
}
