import Contracts
import HTTPTypes

/// What a registry request needs from its caller.
enum Requirement: Equatable {
    /// Any valid identity (the `/v2/` ping, which is where Docker learns it must log in).
    case authenticated
    /// `action` on a repository; nil for the catalog.
    case access(Action, RepositoryName?)
    /// The garbage collection and retention administration (`/gc/`): the scope
    /// `application.write_all`, or authentication off (and then only on loopback).
    case administer

    /// Reads pull; uploads and manifest pushes push; deletes of manifests and blobs delete.
    init(_ route: RegistryRoute, method: HTTPRequest.Method) {
        switch route {
        case .base:
            self = .authenticated
        case .catalog:
            self = .access(.pull, nil)
        case .tags(let name), .referrers(let name, _):
            self = .access(.pull, name)
        case .manifest(let name, _), .blob(let name, _):
            switch method {
            case .get, .head: self = .access(.pull, name)
            case .delete: self = .access(.delete, name)
            default: self = .access(.push, name)
            }
        case .uploads(let name), .upload(let name, _):
            self = .access(.push, name)
        }
    }
}
