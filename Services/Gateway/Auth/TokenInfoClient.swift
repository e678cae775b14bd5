import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore

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

    /// The token's user, or nil when the token is not valid.
    package func user(for token: String) async throws -> OAuthUser? {
        if let cached = await self.cache.value(for: token) { return cached }
        let separator = self.url.contains("?") ? "&" : "?"
        let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let request = HTTPClientRequest(url: self.url + separator + "access_token=" + encoded)
        let user: OAuthUser?
        do {
            let response = try await self.http.execute(request, timeout: Self.timeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            switch response.status.code {
            case 200..<300:
                let answer = try? JSONDecoder().decode(Answer.self, from: Data(buffer: body))
                user = answer?.uid.flatMap { uid in
                    uid.isEmpty ? nil : OAuthUser(uid: uid, realm: answer?.realm ?? "/employees", scopes: Set(answer?.scope ?? []))
                }
            case 500...:
                throw AuthServiceError.unavailable("tokeninfo answered \(response.status.code)")
            default:
                user = nil
            }
        } catch let error as AuthServiceError {
            throw error.registryError
        } catch {
            throw AuthServiceError.unavailable("tokeninfo is not reachable").registryError
        }
        await self.cache.store(user, for: token)
        return user
    }
}

/// A failure of a service authentication depends on.
enum AuthServiceError: Error {
    case unavailable(String)

    var registryError: RegistryError {
        switch self {
        case .unavailable(let message):
            RegistryError(.unavailable, "cannot check credentials: \(message); try again shortly", status: 503)
        }
    }
}
