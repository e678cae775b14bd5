import Contracts

/// Every tag decision of the registry, as pure functions of the settings and what the store read:
/// `latest` as an alias, immutability, create-or-move. Both stores call these inside their
/// transactions and only persist what they answer; the metadata service calls the checks that
/// need no data before asking a store.
package struct TagRules: Sendable {
    static let latest = "latest"

    let settings: TagSettings

    package init(_ settings: TagSettings = TagSettings()) {
        self.settings = settings
    }

    /// Whether `tag` of `repository`, once set, may only ever name the same manifest.
    func isImmutable(_ tag: String, in repository: RepositoryName) -> Bool {
        self.settings.policy.isImmutable(tag: tag, in: repository)
    }

    /// Before a push: `latest` cannot be pushed while it is an alias.
    func checkPush(_ tags: [Tag], to repository: RepositoryName) throws(RegistryError) {
        guard self.settings.latestIsAlias, tags.contains(where: { $0.value == Self.latest }) else { return }
        throw RegistryError(
            .conflict,
            "the tag latest cannot be pushed: it always names the newest tag of \(repository) "
                + "(set LATEST_TAG_ALIAS=false to make it an ordinary tag)",
            detail: ["tag": Self.latest]
        )
    }

    /// What pushing `put` does to `tag`, which names `current` now (nil: no such tag): the event
    /// to persist and announce (created or moved), nil when the tag already names the manifest.
    /// Throws when the tag is immutable and names another manifest.
    func move(_ tag: Tag, for put: ManifestPut, current: Digest?) throws(RegistryError) -> TagEvent? {
        guard let current else {
            return TagEvent(
                action: .created, repository: put.repository, tag: tag.value, digest: put.digest, previous: nil,
                pushedBy: put.pushedBy
            )
        }
        guard current != put.digest else { return nil }
        if self.isImmutable(tag.value, in: put.repository) {
            throw RegistryError.tagImmutable(repository: put.repository, tag: tag.value, current: current)
        }
        return TagEvent(
            action: .moved, repository: put.repository, tag: tag.value, digest: put.digest,
            previous: current.description, pushedBy: put.pushedBy
        )
    }

    /// Before a tag deletion: the `latest` alias is not a tag of its own.
    func checkDeletable(_ tag: Tag, in repository: RepositoryName) throws(RegistryError) {
        guard self.settings.latestIsAlias, tag.value == Self.latest else { return }
        throw RegistryError(
            .unsupported, "latest is an alias of the newest tag of \(repository) and cannot be deleted",
            detail: ["tag": Self.latest]
        )
    }

    /// Deleting `tag`, which names `current`: the event to persist. Throws for an immutable tag.
    func delete(_ tag: Tag, in repository: RepositoryName, current: Digest) throws(RegistryError) -> TagEvent {
        if self.isImmutable(tag.value, in: repository) {
            throw RegistryError.tagImmutableDelete(repository: repository, tag: tag.value)
        }
        return TagEvent(deleted: tag.value, from: repository, digest: current)
    }

    /// Deleting manifest `digest`, which the tags `names` point to: the events to persist (one per
    /// tag). Throws when one of them is immutable.
    func deleteManifest(_ digest: Digest, in repository: RepositoryName, tags names: [String]) throws(RegistryError)
        -> [TagEvent]
    {
        for name in names where self.isImmutable(name, in: repository) {
            throw RegistryError.tagImmutableDelete(repository: repository, tag: name)
        }
        return names.map { TagEvent(deleted: $0, from: repository, digest: digest) }
    }

    /// What a pull's reference asks the store for.
    enum Lookup: Equatable {
        case digest(Digest)
        case tag(Tag)
        /// The newest tag's manifest (`latest` as an alias).
        case newest
    }

    func lookup(_ reference: Reference) -> Lookup {
        switch reference {
        case .digest(let digest): .digest(digest)
        case .tag(let tag) where self.settings.latestIsAlias && tag.value == Self.latest: .newest
        case .tag(let tag): .tag(tag)
        }
    }
}
