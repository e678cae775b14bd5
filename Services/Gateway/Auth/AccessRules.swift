import Contracts

/// What a request wants to do to a repository.
package enum Action: String, Sendable, CaseIterable {
    case pull
    case push
    case delete
}

/// The outcome of an access decision.
package enum AccessDecision: Sendable, Equatable {
    case allow
    /// No (acceptable) credentials: answer 401 with a challenge so the client logs in.
    case challenge
    /// Authenticated, but not allowed: 403 `DENIED` with the reason.
    case deny(String)
    /// A registry token without the needed scope: 401 so the client fetches a token that has it.
    case insufficientScope
}

/// Pier One's permission rules, in one place (the table test exercises every row):
///
/// | identity | pull | push / delete |
/// |---|---|---|
/// | anonymous | only with `HTTP_ALLOW_PUBLIC_READ` | challenged |
/// | employee (`/employees`) | yes | repositories of their teams |
/// | service (`/services`) | yes | scope `application.write` and their team |
/// | scope `application.write_all` | yes | any repository |
/// | EC2 instance | repositories mapped to its account | never |
/// | registry token | what it grants | what it grants |
/// | authentication off | yes | yes |
package struct AccessRules: Sendable {
    package var publicRead: Bool
    /// Per AWS account id, the repository patterns an instance may pull (`team/**` for a team).
    package var instanceAccess: [String: [Glob]]

    package init(publicRead: Bool = false, instanceAccess: [String: [Glob]] = [:]) {
        self.publicRead = publicRead
        self.instanceAccess = instanceAccess
    }

    static let writeScope = "application.write"
    static let writeAllScope = "application.write_all"
    /// May record where an image was built from (`X-SCM-Source` on a manifest push).
    static let trustedScope = "application.write_all_trusted"

    /// Decides `action` on `repository` (nil: the catalog). `teams` are the caller's teams, needed
    /// only for pushes and deletes of OAuth users (nil when unknown).
    package func decide(
        _ identity: Identity, _ action: Action, _ repository: RepositoryName?, teams: [String]? = nil
    ) -> AccessDecision {
        switch identity {
        case .unrestricted:
            return .allow
        case .token(_, let access):
            let granted = access.contains { scope in
                if let repository {
                    return scope.type == "repository" && scope.name == repository.value
                        && (scope.actions.contains(action.rawValue) || scope.actions.contains("*"))
                }
                return scope.type == "registry" && scope.name == "catalog" && scope.actions.contains("*")
            }
            return granted ? .allow : .insufficientScope
        case .anonymous:
            return action == .pull && self.publicRead ? .allow : .challenge
        case .instance(let accountID):
            guard action == .pull else { return .deny("instance identities may only pull") }
            guard let repository else { return .deny("instance identities cannot list the catalog") }
            let patterns = self.instanceAccess[accountID] ?? []
            return patterns.contains { $0.matches(repository.value) }
                ? .allow : .deny("AWS account \(accountID) may not pull \(repository)")
        case .oauth(let user):
            if action == .pull { return .allow }
            guard let repository else { return .deny("nothing to \(action.rawValue)") }
            if user.scopes.contains(Self.writeAllScope) { return .allow }
            if user.isService, !user.scopes.contains(Self.writeScope) {
                return .deny("service user \(user.uid) needs the scope \(Self.writeScope) to \(action.rawValue)")
            }
            guard let teams, teams.contains(repository.team) else {
                return .deny("\(user.uid) is not a member of team \(repository.team) and may not \(action.rawValue) \(repository)")
            }
            return .allow
        }
    }
}
