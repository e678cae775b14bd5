import CLibCrypto
import Contracts
import Foundation

/// What an EC2 instance identity document says about the instance (the fields used here).
package struct InstanceIdentityDocument: Sendable, Equatable, Decodable {
    package var accountId: String
    package var instanceId: String?
    package var region: String?
    package var pendingTime: String
}

/// Verifies `instance-identity-document` credentials: the PKCS#7 signature of
/// `/latest/dynamic/instance-identity/pkcs7`, against AWS's public certificates configured by
/// file, never against a certificate inside the message.
///
/// `PKCS7_verify` runs with `PKCS7_NOINTERN` (the signer must be one of the configured
/// certificates; certificates embedded in the message are ignored) and `PKCS7_NOVERIFY` (the AWS
/// certificates are self-signed leaves, trusted by configuration rather than by a chain).
package final class InstanceIdentityVerifier: @unchecked Sendable {
    // Immutable after init; OpenSSL 3 allows concurrent verification with a shared stack.
    private let certificates: OpaquePointer
    /// Documents whose `pendingTime` is older than this are refused.
    package let maximumAge: TimeInterval

    /// Loads every certificate of a PEM file; throws when there is none.
    package init(certificatesPEM pem: Data, maximumAge: TimeInterval) throws {
        guard let stack = OPENSSL_sk_new_null() else { throw Failure("out of memory") }
        let bio = pem.withUnsafeBytes { BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }
        defer { BIO_free(bio) }
        var count = 0
        while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
            OPENSSL_sk_push(stack, UnsafeRawPointer(certificate))
            count += 1
        }
        ERR_clear_error()
        guard count > 0 else {
            OPENSSL_sk_free(stack)
            throw Failure("no PEM certificate found")
        }
        self.certificates = stack
        self.maximumAge = maximumAge
    }

    deinit {
        while OPENSSL_sk_num(self.certificates) > 0 {
            X509_free(OpaquePointer(OPENSSL_sk_pop(self.certificates)))
        }
        OPENSSL_sk_free(self.certificates)
    }

    /// The document inside `pkcs7` (base64 DER, as the metadata service serves it), when the
    /// signature is by a configured certificate and the document is recent enough.
    package func verify(_ pkcs7: String, now: Date = Date()) throws -> InstanceIdentityDocument {
        let compact = pkcs7.filter { !$0.isWhitespace }
        guard let der = Data(base64Encoded: compact) else { throw Failure("not base64") }
        let content: Data = try der.withUnsafeBytes { raw in
            var pointer: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
            guard let message = d2i_PKCS7(nil, &pointer, raw.count) else { throw Failure("not a PKCS#7 message") }
            defer { PKCS7_free(message) }
            guard let out = BIO_new(BIO_s_mem()) else { throw Failure("out of memory") }
            defer { BIO_free(out) }
            let flags = Int32(PKCS7_NOINTERN | PKCS7_NOVERIFY)
            guard PKCS7_verify(message, self.certificates, nil, nil, out, flags) == 1 else {
                ERR_clear_error()
                throw Failure("the signature is not by a configured AWS certificate")
            }
            var data: UnsafeMutablePointer<CChar>?
            let length = BIO_ctrl(out, BIO_CTRL_INFO, 0, &data)
            guard let data, length > 0 else { throw Failure("empty document") }
            return Data(bytes: data, count: Int(length))
        }
        guard let document = try? JSONDecoder().decode(InstanceIdentityDocument.self, from: content),
              !document.accountId.isEmpty
        else { throw Failure("the signed content is not an instance identity document") }
        guard let pending = Self.parseTime(document.pendingTime) else { throw Failure("unreadable pendingTime") }
        guard now.timeIntervalSince(pending) <= self.maximumAge else {
            throw Failure("the document is older than \(Int(self.maximumAge)) seconds")
        }
        return document
    }

    private static func parseTime(_ value: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: value) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: value)
    }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
        init(_ description: String) { self.description = description }
    }
}
