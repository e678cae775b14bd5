import Contracts

/// The route template of a gateway request path, the `route` label of the HTTP metrics: one of a
/// fixed set, whatever the path, so clients cannot grow the number of series.
enum RouteTemplates {
    static let fixed: Set<String> = [
        "/v2/token", "/ui/", "/ui", "/", "/openapi.json", "/metrics", "/.well-known/health",
        HealthPaths.live, HealthPaths.ready,
    ]

    static func gateway(_ path: String) -> String {
        if let route = try? RegistryRoute(path: path) {
            switch route {
            case .base: return "/v2/"
            case .catalog: return "/v2/_catalog"
            case .tags: return "/v2/{name}/tags/list"
            case .manifest: return "/v2/{name}/manifests/{reference}"
            case .blob: return "/v2/{name}/blobs/{digest}"
            case .uploads: return "/v2/{name}/blobs/uploads/"
            case .upload: return "/v2/{name}/blobs/uploads/{uuid}"
            case .referrers: return "/v2/{name}/referrers/{digest}"
            }
        }
        if let route = try? PierOneRoute(path: path) {
            switch route {
            case .teams: return "/teams"
            case .artifacts: return "/teams/{team}/artifacts"
            case .tags: return "/teams/{team}/artifacts/{artifact}/tags"
            case .scmSource: return "/teams/{team}/artifacts/{artifact}/tags/{tag}/scm-source"
            case .imageTags: return "/tags/{image}"
            case .statistics: return "/stats"
            case .teamStatistics: return "/stats/teams"
            case .oneTeamStatistics: return "/stats/teams/{team}"
            case .artifactStatistics: return "/stats/teams/{team}/artifacts"
            case .garbagePlan: return "/gc/plan"
            case .garbageRun: return "/gc/run"
            case .garbageWhy: return "/gc/why/{digest}"
            }
        }
        return Self.fixed.contains(path) ? path : "other"
    }
}
