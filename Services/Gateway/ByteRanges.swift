import Contracts

/// Parsing of the two range headers of the registry protocol.
enum ByteRanges {
    /// `Content-Range: <start>-<end>` on a chunk PATCH (inclusive, no unit; `bytes ` tolerated).
    static func parseChunk(_ header: String) -> ClosedRange<Int64>? {
        var value = Substring(header)
        if value.hasPrefix("bytes ") { value = value.dropFirst(6) }
        if value.hasPrefix("bytes=") { value = value.dropFirst(6) }
        if let slash = value.firstIndex(of: "/") { value = value[..<slash] }
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = Int64(parts[0]), let end = Int64(parts[1]), start >= 0, end >= start
        else { return nil }
        return start...end
    }

    /// The outcome of a `Range` request header against a blob of `size` bytes (RFC 9110 §14).
    enum Selection: Equatable {
        /// No usable range: serve the whole blob with 200.
        case whole
        /// Serve these bytes with 206.
        case partial(ClosedRange<Int64>)
        /// 416 with `Content-Range: bytes */size`.
        case unsatisfiable
    }

    /// One `bytes=` range: `a-b`, `a-`, or the suffix `-n`. Other units and multiple ranges are
    /// ignored (served whole), as RFC 9110 allows.
    static func select(_ header: String?, size: Int64) -> Selection {
        guard let header, header.hasPrefix("bytes=") else { return .whole }
        let spec = String(header.dropFirst(6).filter { $0 != " " })
        guard !spec.contains(",") else { return .whole }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .whole }
        if parts[0].isEmpty {
            guard let suffix = Int64(parts[1]) else { return .whole }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .partial(max(0, size - suffix)...(size - 1))
        }
        guard let start = Int64(parts[0]) else { return .whole }
        let end: Int64
        if parts[1].isEmpty {
            end = size - 1
        } else {
            guard let value = Int64(parts[1]) else { return .whole }
            guard value >= start else { return .unsatisfiable }
            end = min(value, size - 1)
        }
        guard start < size else { return .unsatisfiable }
        return .partial(start...end)
    }
}
