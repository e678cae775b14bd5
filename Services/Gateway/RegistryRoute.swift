import Contracts

/// The resource a `/v2/…` path names, parsed the way CNCF Distribution's route regexes anchor
/// at the end: a repository name may itself contain `manifests` or `blobs` components.
enum RegistryRoute: Equatable {
    case base
    case catalog
    case tags(RepositoryName)
    case manifest(RepositoryName, reference: String)
    case blob(RepositoryName, digest: String)
    case uploads(RepositoryName)
    case upload(RepositoryName, id: String)
    case referrers(RepositoryName, digest: String)

    /// Parses a request path. Returns nil for a path that is no registry resource, and throws
    /// `NAME_INVALID` when the shape is right but the repository name breaks the grammar.
    init?(path: String) throws(RegistryError) {
        guard path.hasPrefix("/v2") else { return nil }
        let rest = path.dropFirst(3)
        if rest.isEmpty || rest == "/" {
            self = .base
            return
        }
        guard rest.hasPrefix("/") else { return nil }
        let segments = rest.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if segments == ["_catalog"] {
            self = .catalog
            return
        }
        let count = segments.count
        func name(_ end: Int) throws(RegistryError) -> RepositoryName {
            let raw = segments[0..<end].joined(separator: "/")
            guard end > 0, let name = RepositoryName(raw) else {
                throw RegistryError(
                    .nameInvalid, "invalid repository name \"\(raw)\": it must be team/name in lowercase "
                        + "letters, digits and separators (. _ __ -)",
                    detail: ["name": raw]
                )
            }
            return name
        }
        guard count >= 2 else { return nil }
        if count >= 3, segments[count - 2] == "tags", segments[count - 1] == "list" {
            self = .tags(try name(count - 2))
        } else if count >= 3, segments[count - 2] == "manifests", !segments[count - 1].isEmpty {
            self = .manifest(try name(count - 2), reference: segments[count - 1])
        } else if count >= 4, segments[count - 3] == "blobs", segments[count - 2] == "uploads" {
            let id = segments[count - 1]
            self = id.isEmpty ? .uploads(try name(count - 3)) : .upload(try name(count - 3), id: id)
        } else if count >= 3, segments[count - 2] == "blobs", segments[count - 1] == "uploads" {
            self = .uploads(try name(count - 2))
        } else if count >= 3, segments[count - 2] == "blobs", !segments[count - 1].isEmpty {
            self = .blob(try name(count - 2), digest: segments[count - 1])
        } else if count >= 3, segments[count - 2] == "referrers", !segments[count - 1].isEmpty {
            self = .referrers(try name(count - 2), digest: segments[count - 1])
        } else {
            return nil
        }
    }
}
