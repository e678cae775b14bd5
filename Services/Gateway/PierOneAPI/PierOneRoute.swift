import Contracts

/// A resource of the Pier One REST API. Artifacts may have several components
/// (`team/group/app`), so the paths are parsed here rather than by the router.
enum PierOneRoute: Equatable {
    case teams
    case artifacts(team: String)
    case tags(RepositoryName)
    case scmSource(RepositoryName, Tag)
    case imageTags(prefix: String)
    case statistics
    case teamStatistics
    case oneTeamStatistics(team: String)
    case artifactStatistics(team: String)
    /// `GET /gc/plan`, `POST /gc/run`, `GET /gc/why/<digest>` (`GarbageAdminController`).
    case garbagePlan
    case garbageRun
    case garbageWhy(String)

    /// The route of `path`; nil when the path is not a Pier One API resource. Throws for a
    /// resource path whose names are invalid.
    init?(path: String) throws(RegistryError) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard let first = parts.first else { return nil }
        switch first {
        case "teams":
            if parts.count == 1 { self = .teams; return }
            guard parts.count >= 3, parts[2] == "artifacts", !parts[1].isEmpty else { return nil }
            let team = parts[1]
            if parts.count == 3 { self = .artifacts(team: team); return }
            if parts.count >= 6, parts[parts.count - 1] == "scm-source", parts[parts.count - 3] == "tags" {
                let name = try Self.repository(team, parts[3..<(parts.count - 3)])
                self = .scmSource(name, try RequestParsing.tag(parts[parts.count - 2]))
                return
            }
            guard parts.count >= 5, parts[parts.count - 1] == "tags" else { return nil }
            self = .tags(try Self.repository(team, parts[3..<(parts.count - 1)]))
        case "tags":
            guard parts.count == 2 else { return nil }
            self = .imageTags(prefix: parts[1])
        case "stats":
            switch parts.count {
            case 1: self = .statistics
            case 2 where parts[1] == "teams": self = .teamStatistics
            case 3 where parts[1] == "teams" && !parts[2].isEmpty: self = .oneTeamStatistics(team: parts[2])
            case 4 where parts[1] == "teams" && !parts[2].isEmpty && parts[3] == "artifacts": self = .artifactStatistics(team: parts[2])
            default: return nil
            }
        case "gc":
            switch parts.count {
            case 2 where parts[1] == "plan": self = .garbagePlan
            case 2 where parts[1] == "run": self = .garbageRun
            case 3 where parts[1] == "why": self = .garbageWhy(parts[2])
            default: return nil
            }
        default:
            return nil
        }
    }

    private static func repository(_ team: String, _ artifact: ArraySlice<String>) throws(RegistryError) -> RepositoryName {
        let value = ([team] + artifact).joined(separator: "/")
        guard !artifact.isEmpty, let name = RepositoryName(value) else {
            throw RegistryError(.nameInvalid, "\(value) is not a valid repository name", detail: ["name": value])
        }
        return name
    }

    /// What the caller needs: pull on the repository for its tags and scm-source, the catalog
    /// (pull on no repository) for listings across repositories.
    var requirement: Requirement {
        switch self {
        case .tags(let name), .scmSource(let name, _): .access(.pull, name)
        case .garbagePlan, .garbageRun, .garbageWhy: .administer
        default: .access(.pull, nil)
        }
    }
}
