import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Checks OAuth2 tokens with `GET {HTTP_TOKENINFO_URL}?access_token=<token>`.
///
/// 2xx with a `uid` = valid; any other 4xx = invalid; 5xx or no answer = 503, never 401 (an
/// outage must not look like bad credentials). Answers are cached, invalid ones too.
package struct TokenInfoClient: Sendable {
    let url: String
    let http: HTTPClient
    let cache: ExpiringCache<String, OAuthUser?>
    static let timeout = TimeAmount.seconds(5)

    package init(url: String, http: HTTPClient, cache: ExpiringCache<String, OAuthUser?>) {
        self.url = url
        self.http = http
        self.cache = cache
    }

    private struct Answer: Decodable {
        var uid: String?
        var realm: String?
        var scope: [String]?
    }

    /// Longest token looked up; longer ones are refused without a call.
    static let maximumTokenLength = 8192

    /// The token's user, or nil when the token is not valid. Concurrent requests with one token
    /// share one tokeninfo call; a token that cannot be an OAuth2 bearer token (RFC 6750
    /// `b64token`) costs none.
    package func user(for token: String) async throws -> OAuthUser? {
        guard Self.isWellFormed(token) else { return nil }
        return try await self.cache.value(for: token) { [url, http] in
            try await Self.lookUp(token, url: url, http: http)
        }
    }

    /// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`, bounded.
    static func isWellFormed(_ token: String) -> Bool {
        let bytes = token.utf8
        guard !bytes.isEmpty, bytes.count <= Self.maximumTokenLength else { return false }
        var padding = false
        for byte in bytes {
            if byte == UInt8(ascii: "=") {
                padding = true
                continue
            }
            guard !padding else { return false }
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                continue
            default:
                return false
            }
        }
        return bytes.first != UInt8(ascii: "=")
    }

    private static func lookUp(_ token: String, url: String, http: HTTPClient) async throws -> OAuthUser? {
        let separator = url.contains("?") ? "&" : "?"
        let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let request = HTTPClientRequest(url: url + separator + "access_token=" + encoded)
        do {
            let response = try await http.execute(request, timeout: Self.timeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            switch response.status.code {
            case 200..<300:
                let answer = try? JSONDecoder().decode(Answer.self, from: Data(buffer: body))
                return answer?.uid.flatMap { uid in
                    uid.isEmpty ? nil : OAuthUser(uid: uid, realm: answer?.realm ?? "/employees", scopes: Set(answer?.scope ?? []))
                }
            case 500...:
                throw AuthServiceError.unavailable("tokeninfo answered \(response.status.code)")
            default:
                return nil
            }
        } catch let error as AuthServiceError {
            throw error.registryError
        } catch {
            throw AuthServiceError.unavailable("tokeninfo is not reachable").registryError
        }
    }
}

/// A failure of a service authentication depends on.
enum AuthServiceError: Error {
    case unavailable(String)

    var registryError: RegistryError {
        switch self {
        case .unavailable(let message):
            RegistryError(.unavailable, "cannot check credentials: \(message); try again shortly")
        }
    }
}
