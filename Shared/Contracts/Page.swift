/// A request for one page of a lexically ordered listing (`?n=&last=` of the distribution spec).
package struct PageRequest: Sendable, Equatable, Codable {
    /// Largest page served, whatever `n` asks for.
    package static let maximumLimit = 1000

    /// Entries wanted; nil means the server's default (all, up to `maximumLimit`).
    package var limit: Int?
    /// Entries strictly after this one are returned.
    package var after: String?
    /// Newest first instead of the listing's usual order (tags only: by when each got its
    /// current manifest, latest first; `after` then means older than that one).
    package var newestFirst: Bool
    /// Only names starting with this (teams, a team's artifacts, tags: then in name order).
    package var prefix: String?
    /// Tags only: only those pointing at this manifest.
    package var manifest: Digest?

    package init(limit: Int? = nil, after: String? = nil, newestFirst: Bool = false, prefix: String? = nil, manifest: Digest? = nil) {
        self.limit = limit
        self.after = after
        self.newestFirst = newestFirst
        self.prefix = prefix
        self.manifest = manifest
    }

    private enum CodingKeys: String, CodingKey { case limit, after, newestFirst, prefix, manifest }

    /// A request from a replica that does not know `newestFirst`, `prefix` or `manifest` yet
    /// decodes as oldest first, unfiltered.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.limit = try container.decodeIfPresent(Int.self, forKey: .limit)
        self.after = try container.decodeIfPresent(String.self, forKey: .after)
        self.newestFirst = try container.decodeIfPresent(Bool.self, forKey: .newestFirst) ?? false
        self.prefix = try container.decodeIfPresent(String.self, forKey: .prefix)
        self.manifest = try container.decodeIfPresent(Digest.self, forKey: .manifest)
    }

    /// The exclusive upper end of the names starting with `prefix`: names are printable ASCII,
    /// all below DEL (the API refuses any other prefix).
    package static func prefixEnd(_ prefix: String) -> String { prefix + "\u{7F}" }

    /// The page size served: `limit` clamped to 0…`maximumLimit` (a negative one from a caller of
    /// the internal API is 0, never a trap in `prefix` or a negative SQL `LIMIT`). Stores fetch
    /// one row more to learn whether there is a next page.
    package var effectiveLimit: Int { max(0, min(self.limit ?? Self.maximumLimit, Self.maximumLimit)) }
}

/// One page of a listing, and whether more follow.
package struct Page<Element: Sendable & Equatable & Codable>: Sendable, Equatable, Codable {
    package var items: [Element]
    package var hasMore: Bool

    package init(items: [Element], hasMore: Bool) {
        self.items = items
        self.hasMore = hasMore
    }
}

extension Page {
    /// Bytes of referrer annotations one page carries at most: a page ends early (with a next
    /// page) rather than answer many large annotation maps at once.
    package static var annotationBudget: Int { 4 << 20 }

    /// The first `limit` of `items` (fetched one more than `limit`), ending the page earlier once
    /// the items' `weight`s pass `budget` (the first item always fits).
    package static func bounded(_ items: [(item: Element, weight: Int)], limit: Int, budget: Int) -> Page {
        var taken: [Element] = []
        var spent = 0
        for (item, weight) in items.prefix(limit) {
            if !taken.isEmpty, spent + weight > budget {
                return Page(items: taken, hasMore: true)
            }
            taken.append(item)
            spent += weight
        }
        return Page(items: taken, hasMore: items.count > limit)
    }
}
