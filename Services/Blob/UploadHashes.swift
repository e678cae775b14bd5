import Contracts
import Runtime

/// The running digest of each upload session, and which sessions a request is writing to.
///
/// A hash state is only trusted when its offset equals the upload's size: after a failed write or
/// a restart the state is dropped and the commit re-hashes the stored bytes instead.
actor UploadHashes {
    private struct Entry {
        var hasher: StreamingHasher
        var offset: Int64
    }

    private var entries: [UploadID: Entry] = [:]
    private var busy: Set<UploadID> = []

    /// Claims the session for one request; a second concurrent request is refused.
    /// Returns the hash state when it matches `size`, the bytes stored so far.
    func claim(_ id: UploadID, size: Int64) throws(RegistryError) -> StreamingHasher? {
        guard self.busy.insert(id).inserted else {
            throw RegistryError(.blobUploadInvalid, "another request is writing to this upload", status: 409)
        }
        guard let entry = self.entries[id], entry.offset == size else {
            self.entries[id] = nil
            return nil
        }
        return entry.hasher
    }

    /// Claims the session unless a request is using it (for expiry, which must not race a writer).
    func claimIfIdle(_ id: UploadID) -> Bool {
        self.busy.insert(id).inserted
    }

    /// Releases the session, keeping `hasher` as its state at `offset` (nil forgets it).
    func release(_ id: UploadID, hasher: StreamingHasher?, offset: Int64) {
        self.busy.remove(id)
        self.entries[id] = hasher.map { Entry(hasher: $0, offset: offset) }
    }

    /// Forgets a session that ended.
    func end(_ id: UploadID) {
        self.busy.remove(id)
        self.entries[id] = nil
    }
}
