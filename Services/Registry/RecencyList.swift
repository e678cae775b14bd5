/// A node of a `RecencyList`: a class with links toward the newer and the older node. The list
/// holds its nodes strongly from the oldest on (`newer`); `older` should be `unowned`.
protocol RecencyLinked: AnyObject {
    var newer: Self? { get set }
    var older: Self? { get set }
}

/// Nodes from the least to the most recently used, for the caches' eviction order.
struct RecencyList<Node: RecencyLinked>: ~Copyable {
    private(set) var newest: Node?
    private(set) var oldest: Node?

    init() {}

    deinit {
        // Cut the chain link by link: a long chain of strong references released at once recurses.
        var next = self.oldest
        while let node = next {
            next = node.newer
            node.newer = nil
        }
    }

    mutating func unlink(_ node: Node) {
        if let older = node.older { older.newer = node.newer } else { self.oldest = node.newer }
        if let newer = node.newer { newer.older = node.older } else { self.newest = node.older }
        node.newer = nil
        node.older = nil
    }

    mutating func pushNewest(_ node: Node) {
        node.older = self.newest
        node.newer = nil
        self.newest?.newer = node
        self.newest = node
        if self.oldest == nil { self.oldest = node }
    }

    /// Moves `node`, which is in the list, to the newest end.
    mutating func touch(_ node: Node) {
        self.unlink(node)
        self.pushNewest(node)
    }

    /// Empties the list node by node (see `deinit`).
    mutating func removeAll() {
        while let node = self.oldest { self.unlink(node) }
    }
}

/// Counts a cache reports, for its metrics (`pierone_manifest_cache_*`, `pierone_blob_cache_*`).
package struct CacheObserver: Sendable {
    package var hit: @Sendable () -> Void = {}
    package var miss: @Sendable () -> Void = {}
    package var evicted: @Sendable (Int) -> Void = { _ in }
    package var size: @Sendable (_ bytes: Int, _ entries: Int) -> Void = { _, _ in }
    /// The blob cache only: a blob not held (no room outside what was used within the protection,
    /// or past the bound on bytes being collected).
    package var refused: @Sendable () -> Void = {}
    /// The blob cache only: bytes being collected by reads and pushes in flight.
    package var collecting: @Sendable (_ bytes: Int) -> Void = { _ in }
    /// A miss answered by another request's read of the same blob or lookup of the same manifest.
    package var shared: @Sendable () -> Void = {}
    package init() {}
}
