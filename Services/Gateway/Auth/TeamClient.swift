import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The teams of a user: `GET {HTTP_TEAM_SERVICE_URL}/api/accounts/aws?member=<uid>` with the
/// user's token; the `name` of each entry is a team. Cached like tokeninfo.
package struct TeamClient: Sendable {
    let url: String
    let http: HTTPClient
    let cache: ExpiringCache<String, [String]>

    package init(url: String, http: HTTPClient, cache: ExpiringCache<String, [String]>) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.http = http
        self.cache = cache
    }

    private struct Account: Decodable {
        var name: String
    }

    package func teams(of uid: String, token: String) async throws -> [String] {
        if let cached = await self.cache.value(for: uid) { return cached }
        let member = uid.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        var request = HTTPClientRequest(url: "\(self.url)/api/accounts/aws?member=\(member)")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let teams: [String]
        do {
            let response = try await self.http.execute(request, timeout: TokenInfoClient.timeout)
            let body = try await response.body.collect(upTo: 4 << 20)
            switch response.status.code {
            case 200..<300:
                teams = ((try? JSONDecoder().decode([Account].self, from: Data(buffer: body))) ?? []).map(\.name)
            case 500...:
                throw AuthServiceError.unavailable("the team service answered \(response.status.code)")
            default:
                teams = []
            }
        } catch let error as AuthServiceError {
            throw error.registryError
        } catch {
            throw AuthServiceError.unavailable("the team service is not reachable").registryError
        }
        await self.cache.store(teams, for: uid)
        return teams
    }
}
