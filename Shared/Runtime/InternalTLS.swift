import NIOSSL

/// Mutual TLS between the services, from a private CA: `INTERNAL_TLS_CA` (PEM of the CA),
/// `INTERNAL_TLS_CERT` (this service's certificate chain, PEM) and `INTERNAL_TLS_KEY` (its key).
///
/// Servers (metadata, blob) require a client certificate from the CA and refuse every other
/// caller; clients (the gateway) require the server's certificate to be from the CA and to name
/// the host they called.
package struct InternalTLS: Sendable {
    package var caPath: String
    package var certificatePath: String
    package var keyPath: String

    package init(caPath: String, certificatePath: String, keyPath: String) {
        self.caPath = caPath
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }

    /// The three variables, or nil when none is set; a partial set names what is missing.
    package static func from(_ environment: EnvironmentReader) throws -> InternalTLS? {
        let values = ["INTERNAL_TLS_CA", "INTERNAL_TLS_CERT", "INTERNAL_TLS_KEY"].map { ($0, environment.string($0)) }
        if values.allSatisfy({ $0.1 == nil }) { return nil }
        if let missing = values.first(where: { $0.1 == nil }) {
            throw ConfigurationError(missing.0, "is needed with the other INTERNAL_TLS_* variables")
        }
        return InternalTLS(caPath: values[0].1!, certificatePath: values[1].1!, keyPath: values[2].1!)
    }

    private func load() throws -> (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource, ca: NIOSSLTrustRoots) {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(self.certificatePath)
        } catch {
            throw ConfigurationError("INTERNAL_TLS_CERT", "cannot read a PEM certificate from \(self.certificatePath)")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: self.keyPath, format: .pem)
        } catch {
            throw ConfigurationError("INTERNAL_TLS_KEY", "cannot read a PEM private key from \(self.keyPath)")
        }
        guard (try? NIOSSLCertificate.fromPEMFile(self.caPath))?.isEmpty == false else {
            throw ConfigurationError("INTERNAL_TLS_CA", "cannot read a PEM certificate from \(self.caPath)")
        }
        return (chain.map { .certificate($0) }, .privateKey(key), .file(self.caPath))
    }

    /// For metadata and blob: HTTP/2 and HTTP/1.1 by ALPN, client certificates required.
    package func serverConfiguration() throws -> TLSConfiguration {
        let material = try self.load()
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: material.chain, privateKey: material.key)
        tls.trustRoots = material.ca
        tls.certificateVerification = .noHostnameVerification
        tls.applicationProtocols = ["h2", "http/1.1"]
        return tls
    }

    /// For the gateway's clients: the server must present a certificate from the CA for its host.
    package func clientConfiguration() throws -> TLSConfiguration {
        let material = try self.load()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = material.chain
        tls.privateKey = material.key
        tls.trustRoots = material.ca
        tls.certificateVerification = .fullVerification
        return tls
    }
}
