import Contracts

/// Which upload sessions a request of this process is writing to: a second concurrent request to
/// one session is refused, so two writers never interleave bytes or digest state.
actor UploadClaims {
    private var busy: Set<UploadID> = []

    /// Claims the session for one request; throws when another request holds it.
    func claim(_ id: UploadID) throws(RegistryError) {
        guard self.busy.insert(id).inserted else {
            throw RegistryError(.uploadBusy, "another request is writing to this upload")
        }
    }

    /// Claims the session unless a request is using it (for expiry, which must not race a writer).
    func claimIfIdle(_ id: UploadID) -> Bool {
        self.busy.insert(id).inserted
    }

    func release(_ id: UploadID) {
        self.busy.remove(id)
    }
}
