import Contracts
import HTTPTypes
import Hummingbird
import Logging

/// The garbage collection and retention administration, for `pierone gc`:
///
/// - `GET /gc/plan[?limit=N][&orphans=true]`: the dry run — what retention would delete (rule,
///   reason, age, bytes), the collector's queue with what each review would remove and when, and
///   with `orphans` what an orphan scan of the storage would delete;
/// - `POST /gc/run[?orphans=true]`: retention, then a collection of everything due (and the
///   orphan scan), now; what they deleted;
/// - `GET /gc/why/<digest>`: what keeps a blob or manifest, or when and why it goes.
///
/// Only for callers with the scope `application.write_all` (`AuthMiddleware`), or with
/// authentication off from loopback: without authentication anyone who reaches the port could
/// otherwise start collections.
struct GarbageAdminController: Sendable {
    let administration: (any GarbageAdministration)?
    /// Whether authentication is on: then only an administrator's identity is admitted, whatever
    /// the request context says.
    let authenticated: Bool

    func register(on router: Router<GatewayRequestContext>) {
        router.get("/gc/plan") { request, context in
            let administration = try self.admitted(context)
            let raw = request.uri.queryParameters.get("limit")
            // A limit that is no number is refused, not read as the default.
            let limit = raw.map { Int($0) ?? 0 } ?? 1000
            guard (1...1000).contains(limit) else {
                throw RegistryError(.parameterInvalid, "limit must be from 1 to 1000", detail: ["limit": "\(limit)"])
            }
            let orphans = request.uri.queryParameters.get("orphans") == "true"
            return try ListingHandlers.json(try await administration.plan(limit: limit, orphans: orphans))
        }
        router.post("/gc/run") { request, context in
            let administration = try self.admitted(context)
            // A page in a browser cannot send this header to another origin without asking first:
            // with authentication off, a web page the developer opens cannot start a run.
            guard request.headers[Self.commandHeader] != nil else {
                throw RegistryError(.denied, "POST /gc/run needs the header X-PierOne-Command (pierone gc sends it)")
            }
            let orphans = request.uri.queryParameters.get("orphans") == "true"
            context.logger.info(
                "garbage collection run requested", metadata: ["uid": "\(context.identity.uid)", "orphans": "\(orphans)"]
            )
            return try ListingHandlers.json(try await administration.runNow(orphans: orphans))
        }
        router.get("/gc/why/:digest") { _, context in
            let administration = try self.admitted(context)
            let raw = context.parameters.get("digest") ?? ""
            guard let digest = Digest(raw) else {
                throw RegistryError(.digestInvalid, "\(raw) is not a digest (algorithm:hex)", detail: ["digest": raw])
            }
            return try ListingHandlers.json(try await administration.why(digest))
        }
    }

    static let commandHeader = HTTPField.Name("X-PierOne-Command")!

    private func admitted(_ context: GatewayRequestContext) throws -> any GarbageAdministration {
        if self.authenticated {
            guard case .oauth(let user) = context.identity, user.scopes.contains(AccessRules.writeAllScope) else {
                throw RegistryError(.denied, "garbage collection and retention need the scope \(AccessRules.writeAllScope)")
            }
        } else {
            let address = context.remoteAddress ?? ""
            guard address == "127.0.0.1" || address == "::1" || address.hasPrefix("::ffff:127.") else {
                throw RegistryError(
                    .denied, "authentication is off: the garbage collection API answers only on loopback (127.0.0.1, ::1)"
                )
            }
        }
        guard let administration = self.administration else {
            throw RegistryError(.unsupported, "garbage collection administration is not available on this gateway")
        }
        return administration
    }
}
