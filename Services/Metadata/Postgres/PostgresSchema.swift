/// The PostgreSQL schema as numbered migrations, one statement per entry.
///
/// Names and digests use the "C" collation so listings are in byte-wise lexical order whatever
/// the database's locale. Timestamps are `clock_timestamp()`, so tags created in one transaction
/// still order by creation.
enum PostgresSchema {
    /// Key of the advisory lock that serialises migrations across replicas starting together.
    static let migrationLock: Int64 = 0x5049_4552_4F4E_45  // "PIERONE"

    static let migrations: [[String]] = [
        // 1: repositories, blobs, manifests, tags, referrers.
        [
            """
            CREATE TABLE repositories (
                id BIGSERIAL PRIMARY KEY,
                name TEXT COLLATE "C" NOT NULL UNIQUE,
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
            )
            """,
            """
            CREATE TABLE blobs (
                digest TEXT COLLATE "C" PRIMARY KEY,
                size BIGINT NOT NULL,
                location TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
            )
            """,
            """
            CREATE TABLE repository_blobs (
                repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
                digest TEXT COLLATE "C" NOT NULL REFERENCES blobs (digest),
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (repository_id, digest)
            )
            """,
            "CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest)",
            """
            CREATE TABLE manifests (
                repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
                digest TEXT COLLATE "C" NOT NULL,
                media_type TEXT NOT NULL,
                content BYTEA NOT NULL,
                size BIGINT NOT NULL,
                subject TEXT COLLATE "C",
                artifact_type TEXT,
                annotations JSONB,
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (repository_id, digest)
            )
            """,
            """
            CREATE INDEX manifests_by_subject ON manifests (repository_id, subject, digest)
                WHERE subject IS NOT NULL
            """,
            """
            CREATE TABLE manifest_references (
                repository_id BIGINT NOT NULL,
                manifest_digest TEXT COLLATE "C" NOT NULL,
                referenced_digest TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (repository_id, manifest_digest, referenced_digest),
                FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest)
                    ON DELETE CASCADE
            )
            """,
            "CREATE INDEX manifest_references_by_target ON manifest_references (repository_id, referenced_digest)",
            """
            CREATE TABLE tags (
                repository_id BIGINT NOT NULL,
                name TEXT COLLATE "C" NOT NULL,
                manifest_digest TEXT COLLATE "C" NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                pushed_by TEXT,
                PRIMARY KEY (repository_id, name),
                FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest)
            )
            """,
            "CREATE INDEX tags_by_creation ON tags (repository_id, created_at)",
            "CREATE INDEX tags_by_manifest ON tags (repository_id, manifest_digest)",
        ],
        // 2: the Pier One API (image ids, sizes, tag order by push, scm-source) and the
        //    notification outbox.
        [
            "ALTER TABLE manifests ADD COLUMN image_id TEXT COLLATE \"C\"",
            "ALTER TABLE manifests ADD COLUMN total_size BIGINT",
            """
            UPDATE manifests SET
                image_id = COALESCE(convert_from(content, 'UTF8')::jsonb -> 'config' ->> 'digest', digest),
                total_size = size + COALESCE((
                    SELECT SUM(b.size) FROM manifest_references mr JOIN blobs b ON b.digest = mr.referenced_digest
                    WHERE mr.repository_id = manifests.repository_id AND mr.manifest_digest = manifests.digest
                ), 0)
            """,
            "CREATE INDEX manifests_by_image ON manifests (image_id text_pattern_ops)",
            "CREATE INDEX tags_by_update ON tags (repository_id, updated_at, name)",
            """
            CREATE TABLE scm_sources (
                repository_id BIGINT NOT NULL,
                manifest_digest TEXT COLLATE "C" NOT NULL,
                url TEXT,
                revision TEXT,
                author TEXT,
                status TEXT,
                origin TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (repository_id, manifest_digest),
                FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest)
                    ON DELETE CASCADE
            )
            """,
            """
            CREATE TABLE notification_outbox (
                id BIGSERIAL PRIMARY KEY,
                sink TEXT NOT NULL,
                payload TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                last_error TEXT
            )
            """,
            "CREATE INDEX notification_outbox_due ON notification_outbox (sink, next_attempt_at, id)",
        ],
        // 3: the garbage collector's review queue (see the SQLite schema): a link
        //    (repository_id > 0) or a blob row (0) that may have become garbage, since `queued_at`
        //    (milliseconds since 1970). Existing candidates are queued once, here, as of now: they
        //    go a grace period after the upgrade.
        [
            """
            CREATE TABLE gc_queue (
                repository_id BIGINT NOT NULL,
                digest TEXT COLLATE "C" NOT NULL,
                queued_at BIGINT NOT NULL,
                PRIMARY KEY (repository_id, digest)
            )
            """,
            "CREATE INDEX gc_queue_due ON gc_queue (queued_at)",
            """
            CREATE TABLE gc_trash (
                location TEXT COLLATE "C" PRIMARY KEY,
                digest TEXT COLLATE "C" NOT NULL,
                size BIGINT NOT NULL,
                trashed_at BIGINT NOT NULL,
                attempts INTEGER NOT NULL
            )
            """,
            """
            INSERT INTO gc_queue (repository_id, digest, queued_at)
            SELECT rb.repository_id, rb.digest, (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM repository_blobs rb
            WHERE NOT EXISTS (
                SELECT 1 FROM manifest_references mr
                WHERE mr.repository_id = rb.repository_id AND mr.referenced_digest = rb.digest
            )
            ON CONFLICT DO NOTHING
            """,
            """
            INSERT INTO gc_queue (repository_id, digest, queued_at)
            SELECT 0, b.digest, (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM blobs b
            WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
            ON CONFLICT DO NOTHING
            """,
        ],
        // 4: retention: when a tag's manifest was last pulled (milliseconds since 1970, recorded
        //    in batches); blobs by location for the orphan scan.
        [
            "ALTER TABLE tags ADD COLUMN pulled_at BIGINT",
            // Pulls were not recorded before: every existing tag counts as pulled at the upgrade,
            // so a `notPulledFor` rule waits that long before it deletes one.
            "UPDATE tags SET pulled_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            // The orphan scan asks which stored locations no row holds.
            "CREATE INDEX blobs_by_location ON blobs (location)",
            // Who runs the collector and retention (`MetadataAPI.lease`), by the database's clock.
            """
            CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL
            )
            """,
        ],
        // 5: caches: every commit that can make a cached answer wrong (a tag moved or deleted, a
        //    manifest deleted, a blob unlinked) announces its repository on `pierone_changes`
        //    (`PostgresChangeListener`). New tags, manifests and links announce nothing: no cache
        //    holds "not found", and `latest` is never cached. Repositories are never deleted.
        [
            """
            CREATE FUNCTION pierone_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                changed TEXT;
            BEGIN
                SELECT r.name INTO changed FROM repositories r WHERE r.id = OLD.repository_id;
                IF changed IS NOT NULL THEN
                    PERFORM pg_notify('pierone_changes', changed);
                END IF;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER tags_announce_change AFTER UPDATE OF manifest_digest OR DELETE ON tags
                FOR EACH ROW EXECUTE FUNCTION pierone_announce_change()
            """,
            """
            CREATE TRIGGER manifests_announce_change AFTER DELETE ON manifests
                FOR EACH ROW EXECUTE FUNCTION pierone_announce_change()
            """,
            """
            CREATE TRIGGER repository_blobs_announce_change AFTER DELETE ON repository_blobs
                FOR EACH ROW EXECUTE FUNCTION pierone_announce_change()
            """,
        ],
    ]
}
