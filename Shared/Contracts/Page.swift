/// A request for one page of a lexically ordered listing (`?n=&last=` of the distribution spec).
public struct PageRequest: Sendable, Equatable, Codable {
    /// Largest page served, whatever `n` asks for.
    public static let maximumLimit = 1000

    /// Entries wanted; nil means the server's default (all, up to `maximumLimit`).
    public var limit: Int?
    /// Entries strictly after this one are returned.
    public var after: String?

    public init(limit: Int? = nil, after: String? = nil) {
        self.limit = limit
        self.after = after
    }

    /// The number of rows to fetch: one more than the page, to learn whether there is a next page.
    public var effectiveLimit: Int { min(self.limit ?? Self.maximumLimit, Self.maximumLimit) }
}

/// One page of a listing, and whether more follow.
public struct Page<Element: Sendable & Equatable & Codable>: Sendable, Equatable, Codable {
    public var items: [Element]
    public var hasMore: Bool

    public init(items: [Element], hasMore: Bool) {
        self.items = items
        self.hasMore = hasMore
    }
}
