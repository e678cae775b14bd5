/// An untagged manifest no index lists and whose subject (if any) is gone: what an
/// `untaggedFor` rule deletes.
package struct UntaggedManifest: Sendable, Equatable, Codable {
    package var digest: Digest
    package var pushedMillis: Int64
    /// The manifest and what it references, in bytes.
    package var totalSize: Int64

    package init(digest: Digest, pushedMillis: Int64, totalSize: Int64) {
        self.digest = digest
        self.pushedMillis = pushedMillis
        self.totalSize = totalSize
    }
}

/// A manifest pulled at `millis`: every tag naming it counts as pulled (`notPulledFor`).
package struct PullRecord: Sendable, Equatable, Hashable, Codable {
    package var repository: RepositoryName
    package var digest: Digest
    package var millis: Int64

    package init(repository: RepositoryName, digest: Digest, millis: Int64) {
        self.repository = repository
        self.digest = digest
        self.millis = millis
    }
}
