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
    /// A header this registry cannot read: an unknown scheme, undecodable Basic, a user name other
    /// than `oauth2` or `instance-identity-document`, an empty secret. Refused with 401 like a wrong
    /// token, so `docker login` with a wrong user name fails instead of passing as anonymous.
    case unrecognized

    /// Parses the header; nil only when there is none.
    package init?(authorization header: String?) {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else {
            self = .unrecognized
            return
        }
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        switch parts[0].lowercased() {
        case "bearer":
            self = value.isEmpty ? .unrecognized : .bearer(value)
        case "basic":
            guard let decoded = Data(base64Encoded: value).flatMap({ String(data: $0, encoding: .utf8) }),
                  let colon = decoded.firstIndex(of: ":")
            else {
                self = .unrecognized
                return
            }
            let user = decoded[..<colon]
            let secret = String(decoded[decoded.index(after: colon)...])
            guard !(user.isEmpty && secret.isEmpty) else {
                // `Basic base64(":")`, which clients without credentials send: no credentials.
                return nil
            }
            switch user {
            case "oauth2" where !secret.isEmpty: self = .oauthToken(secret)
            case "instance-identity-document" where !secret.isEmpty: self = .instanceIdentity(pkcs7: secret)
            default: self = .unrecognized
            }
        default:
            self = .unrecognized
        }
    }
}
