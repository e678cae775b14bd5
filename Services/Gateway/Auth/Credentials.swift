import Foundation

/// The credentials an `Authorization` header carries.
///
/// Docker clients only send Basic: `docker login -u oauth2 -p <token>` becomes
/// `Basic base64("oauth2:<token>")`; an EC2 instance sends `instance-identity-document:<pkcs7>`.
/// Other tools send `Bearer <token>`, an OAuth2 token or a registry token issued by `/v2/token`.
package enum Credentials: Sendable, Equatable {
    case oauthToken(String)
    case instanceIdentity(pkcs7: String)
    case bearer(String)

    /// Parses the header; nil for a missing header or one this registry does not understand.
    package init?(authorization header: String?) {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        switch parts[0].lowercased() {
        case "bearer":
            guard !value.isEmpty else { return nil }
            self = .bearer(value)
        case "basic":
            guard let decoded = Data(base64Encoded: value).flatMap({ String(data: $0, encoding: .utf8) }),
                  let colon = decoded.firstIndex(of: ":")
            else { return nil }
            let user = decoded[..<colon]
            let secret = String(decoded[decoded.index(after: colon)...])
            guard !secret.isEmpty else { return nil }
            switch user {
            case "oauth2": self = .oauthToken(secret)
            case "instance-identity-document": self = .instanceIdentity(pkcs7: secret)
            default: return nil
            }
        default:
            return nil
        }
    }
}
