import Crypto
import Foundation

/// AWS credentials for signing requests.
package struct AWSCredentials: Sendable, Equatable {
    package var accessKeyID: String
    package var secretAccessKey: String
    package var sessionToken: String?

    package init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// AWS Signature Version 4 (docs.aws.amazon.com, "Signature Version 4 signing process"), written
/// on swift-crypto because no library here does it; checked against AWS's published examples.
///
/// Callers pass the path already in its canonical (URI-encoded) form, the query as decoded pairs,
/// and every header to sign (`host` and `x-amz-date` at least).
package struct AWSSigV4: Sendable {
    package var region: String
    package var service: String

    package init(region: String, service: String) {
        self.region = region
        self.service = service
    }

    /// SHA-256 of the empty payload.
    package static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC, the `x-amz-date` format.
    package static func amzDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// The `Authorization` header value for a request.
    package func authorization(
        method: String, path: String, query: [(String, String)], headers: [(String, String)], payloadHash: String,
        credentials: AWSCredentials, amzDate: String
    ) -> String {
        let (signedHeaders, signature) = self.signature(
            method: method, path: path, query: query, headers: headers, payloadHash: payloadHash,
            credentials: credentials, amzDate: amzDate
        )
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(self.scope(amzDate)), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    /// The headers to send with a request to `host` (with its port) so that it is signed:
    /// `headers`, `x-amz-date`, `x-amz-security-token` with temporary credentials, and
    /// `Authorization`. `host` itself is signed but left to the HTTP client to send.
    package func signedHeaders(
        method: String, host: String, path: String, query: [(String, String)], headers: [(String, String)],
        payloadHash: String, credentials: AWSCredentials, now: Date = Date()
    ) -> [(String, String)] {
        let date = Self.amzDate(now)
        var signed = headers + [("host", host), ("x-amz-date", date)]
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        let authorization = self.authorization(
            method: method, path: path, query: query, headers: signed, payloadHash: payloadHash,
            credentials: credentials, amzDate: date
        )
        return signed.filter { $0.0 != "host" } + [("Authorization", authorization)]
    }

    /// The signed header list and the hex signature.
    package func signature(
        method: String, path: String, query: [(String, String)], headers: [(String, String)], payloadHash: String,
        credentials: AWSCredentials, amzDate: String
    ) -> (signedHeaders: String, signature: String) {
        let canonicalHeaders = headers
            .map { ($0.0.lowercased(), Self.normalizeSpaces($0.1)) }
            .sorted { $0.0 < $1.0 }
        let signedHeaders = canonicalHeaders.map(\.0).joined(separator: ";")
        let canonicalRequest = [
            method,
            path.isEmpty ? "/" : path,
            Self.canonicalQuery(query),
            canonicalHeaders.map { "\($0.0):\($0.1)\n" }.joined(),
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, self.scope(amzDate),
            Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        let key = Self.signingKey(
            secret: credentials.secretAccessKey, date: String(amzDate.prefix(8)), region: self.region, service: self.service
        )
        let signature = HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key)
        return (signedHeaders, Self.hex(signature))
    }

    /// Query items of a presigned URL (`X-Amz-Signature` last), signing only the host header.
    package func presignedQuery(
        method: String, path: String, host: String, query: [(String, String)] = [], expires: Int,
        credentials: AWSCredentials, amzDate: String
    ) -> [(String, String)] {
        var items = query + [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(self.scope(amzDate))"),
            ("X-Amz-Date", amzDate),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        if let token = credentials.sessionToken {
            items.append(("X-Amz-Security-Token", token))
        }
        let (_, signature) = self.signature(
            method: method, path: path, query: items, headers: [("host", host)], payloadHash: "UNSIGNED-PAYLOAD",
            credentials: credentials, amzDate: amzDate
        )
        return items + [("X-Amz-Signature", signature)]
    }

    func scope(_ amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(self.region)/\(self.service)/aws4_request"
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
    package static func signingKey(secret: String, date: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + secret).utf8))
        for part in [date, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    /// Sorted `key=value` pairs, both URI-encoded.
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(key: String, value: String)] = query.map { (key: Self.encode($0.0), value: Self.encode($0.1)) }
        let sorted = encoded.sorted { lhs, rhs in lhs.key == rhs.key ? lhs.value < rhs.value : lhs.key < rhs.key }
        return sorted.map { $0.key + "=" + $0.value }.joined(separator: "&")
    }

    /// RFC 3986 encoding of everything but the unreserved characters (and `/` when `keepSlash`).
    package static func encode(_ string: String, keepSlash: Bool = false) -> String {
        var result = ""
        for byte in string.utf8 {
            if Self.unreserved.contains(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                result.append(Character(UnicodeScalar(byte)))
            } else {
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    private static let unreserved: Set<UInt8> = Set(
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8)
    )

    private static func normalizeSpaces(_ value: String) -> String {
        value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
            .joined(separator: " ")
    }

    private static func hex(_ bytes: some Sequence<UInt8>) -> String {
        DigestHasher.hex(bytes)
    }
}
