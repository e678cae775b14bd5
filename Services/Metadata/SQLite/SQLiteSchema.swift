/// The SQLite schema as numbered migrations, one statement per entry (SQLite runs only the first
/// statement of a multi-statement string).
///
/// Timestamps are milliseconds since 1970 (UTC). Manifest bytes are stored exactly as pushed.
enum SQLiteSchema {
    static let migrations: [[String]] = [
        // 1: repositories, blobs, manifests, tags.
        [
            """
            CREATE TABLE repositories (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE blobs (
                digest TEXT PRIMARY KEY,
                size INTEGER NOT NULL,
                location TEXT NOT NULL,
                created_at INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE repository_blobs (
                repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
                digest TEXT NOT NULL REFERENCES blobs(digest),
                created_at INTEGER NOT NULL,
                PRIMARY KEY (repository_id, digest)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE manifests (
                repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
                digest TEXT NOT NULL,
                media_type TEXT NOT NULL,
                content BLOB NOT NULL,
                size INTEGER NOT NULL,
                subject TEXT,
                artifact_type TEXT,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (repository_id, digest)
            )
            """,
            "CREATE INDEX manifests_by_subject ON manifests (repository_id, subject) WHERE subject IS NOT NULL",
            """
            CREATE TABLE manifest_references (
                repository_id INTEGER NOT NULL,
                manifest_digest TEXT NOT NULL,
                referenced_digest TEXT NOT NULL,
                PRIMARY KEY (repository_id, manifest_digest, referenced_digest),
                FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest)
                    ON DELETE CASCADE
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE tags (
                repository_id INTEGER NOT NULL,
                name TEXT NOT NULL,
                manifest_digest TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                pushed_by TEXT,
                PRIMARY KEY (repository_id, name),
                FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX tags_by_creation ON tags (repository_id, created_at)",
        ],
        // 2: referrers carry annotations; finding the manifests that use a blob or a child manifest.
        [
            "ALTER TABLE manifests ADD COLUMN annotations TEXT",
            """
            CREATE INDEX manifest_references_by_target
                ON manifest_references (repository_id, referenced_digest)
            """,
            "CREATE INDEX tags_by_manifest ON tags (repository_id, manifest_digest)",
        ],
        // 3: the Pier One API (image ids, sizes, tag order by push, scm-source) and the
        //    notification outbox.
        [
            "ALTER TABLE manifests ADD COLUMN image_id TEXT",
            "ALTER TABLE manifests ADD COLUMN total_size INTEGER",
            """
            UPDATE manifests SET
                image_id = COALESCE(json_extract(CAST(content AS TEXT), '$.config.digest'), digest),
                total_size = size + COALESCE((
                    SELECT SUM(b.size) FROM manifest_references mr JOIN blobs b ON b.digest = mr.referenced_digest
                    WHERE mr.repository_id = manifests.repository_id AND mr.manifest_digest = manifests.digest
                ), 0)
            """,
            "CREATE INDEX manifests_by_image ON manifests (image_id)",
            "CREATE INDEX tags_by_update ON tags (repository_id, updated_at, name)",
            """
            CREATE TABLE scm_sources (
                repository_id INTEGER NOT NULL,
                manifest_digest TEXT NOT NULL,
                url TEXT,
                revision TEXT,
                author TEXT,
                status TEXT,
                origin TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (repository_id, manifest_digest),
                FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest)
                    ON DELETE CASCADE
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE notification_outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                sink TEXT NOT NULL,
                payload TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL,
                last_error TEXT
            )
            """,
            "CREATE INDEX notification_outbox_due ON notification_outbox (sink, next_attempt_at, id)",
        ],
        // 4: the garbage collector's review queue: a link (repository_id > 0) or a blob row
        //    (repository_id = 0) that may have become garbage, since `queued_at`. Existing links no
        //    manifest references and blob rows no repository links are queued once, here, as of
        //    now: they go a grace period after the upgrade.
        [
            """
            CREATE TABLE gc_queue (
                repository_id INTEGER NOT NULL,
                digest TEXT NOT NULL,
                queued_at INTEGER NOT NULL,
                PRIMARY KEY (repository_id, digest)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX gc_queue_due ON gc_queue (queued_at)",
            "CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest)",
            // Blobs whose rows a review removed and whose bytes are not confirmed deleted yet
            // (a collector that crashed, or a deletion that failed, is retried from here).
            """
            CREATE TABLE gc_trash (
                location TEXT PRIMARY KEY,
                digest TEXT NOT NULL,
                size INTEGER NOT NULL,
                trashed_at INTEGER NOT NULL,
                attempts INTEGER NOT NULL
            ) WITHOUT ROWID
            """,
            """
            INSERT OR IGNORE INTO gc_queue (repository_id, digest, queued_at)
            SELECT rb.repository_id, rb.digest, CAST(unixepoch('subsec') * 1000 AS INTEGER) FROM repository_blobs rb
            WHERE NOT EXISTS (
                SELECT 1 FROM manifest_references mr
                WHERE mr.repository_id = rb.repository_id AND mr.referenced_digest = rb.digest
            )
            """,
            """
            INSERT OR IGNORE INTO gc_queue (repository_id, digest, queued_at)
            SELECT 0, b.digest, CAST(unixepoch('subsec') * 1000 AS INTEGER) FROM blobs b
            WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
            """,
        ],
        // 5: retention: when a tag's manifest was last pulled (recorded in batches); blobs by
        //    location for the orphan scan.
        [
            "ALTER TABLE tags ADD COLUMN pulled_at INTEGER",
            // Pulls were not recorded before: every existing tag counts as pulled at the upgrade,
            // so a `notPulledFor` rule waits that long before it deletes one.
            "UPDATE tags SET pulled_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)",
            // The orphan scan asks which stored locations no row holds.
            "CREATE INDEX blobs_by_location ON blobs (location)",
            // Who runs the collector and retention (`MetadataAPI.lease`).
            """
            CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at INTEGER NOT NULL
            ) WITHOUT ROWID
            """,
        ],
    ]
}
