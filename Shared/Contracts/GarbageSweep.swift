/// What one review of the garbage collector's queue did (`MetadataAPI.collectGarbage`).
///
/// The queue holds what may have become garbage, fed by the changes that can create it: a link
/// made by an upload or a mount (it is garbage if no manifest comes to reference it), the blobs of a
/// deleted manifest, an unlinked blob. An entry is reviewed once it has waited the grace period,
/// in the transaction that removes what it finds: a link no manifest of its repository references,
/// then a blob row no repository links.
package struct GarbageSweep: Sendable, Equatable, Codable {
    /// Queue entries reviewed.
    package var reviewed = 0
    /// Links removed.
    package var unlinked = 0
    /// Manifests removed: untagged, listed by no index, their subject gone (their blobs and
    /// children are queued and go in a later review of the same collection).
    package var manifests = 0
    /// Blob rows removed: their bytes are now the caller's to delete (`BlobAPI.discard`), then to
    /// confirm (`MetadataAPI.purgeCollected`). Also blobs removed earlier whose deletion was never
    /// confirmed (a collector that crashed or failed), once `retryAfter` has passed.
    package var removed: [BlobRecord] = []
    /// Whether entries are still due after this review (1; another review follows at once) or
    /// not (0).
    package var due = 0
    /// Entries left in the queue (due or not), counted when none is due: the queue's depth.
    package var queued: Int?

    /// Milliseconds after its removal when an unconfirmed blob is handed out again.
    package static let retryAfter: Int64 = 10_000

    package init(reviewed: Int = 0, unlinked: Int = 0, removed: [BlobRecord] = [], due: Int = 0) {
        self.reviewed = reviewed
        self.unlinked = unlinked
        self.removed = removed
        self.due = due
    }
}
