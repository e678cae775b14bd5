import Blob
import Contracts
import Gateway
import Metadata
import Foundation
import Runtime

/// Everything `pierone serve` reads from the environment, validated once at start.
package struct ServeConfiguration: Sendable {
    /// `HTTP_PORT`: the public registry port.
    package var port: Int
    /// `HTTP_BIND_ADDRESS`: where to listen. Defaults to 127.0.0.1 while authentication is off,
    /// 0.0.0.0 with it.
    package var bindAddress: String
    /// `STORAGE_DIRECTORY`: blobs, uploads and the SQLite file.
    package var storageDirectory: String
    /// `MUTABLE_TAGS` and `TAG_POLICY_FILE`.
    package var tagPolicy: TagPolicy
    /// `LATEST_TAG_ALIAS`.
    package var latestIsAlias: Bool
    /// `UPLOAD_MAX_AGE`: seconds after which an unfinished upload session is removed.
    package var uploadMaximumAge: Int
    /// `UPLOAD_SESSIONS_PER_CLIENT`: open upload sessions one client (identity, or address when
    /// anonymous) may hold per blob service; beyond it `POST …/blobs/uploads/` answers 429.
    package var uploadSessionsPerClient = BlobService.defaultSessionsPerClient
    /// `GC_GRACE_PERIOD`: how long a candidate for garbage collection waits before it is
    /// reviewed (default 24 h); see docs/storage.md.
    package var gcGracePeriod: Duration = .seconds(86_400)
    /// `GC_ENABLED`: run the garbage collector (default on). Off while replicas of a version
    /// without it still serve (docs/operations.md, upgrades); candidates are still queued.
    package var gcEnabled = true
    /// `GC_ORPHAN_SCAN_INTERVAL`: between scans of the storage for blobs no metadata row holds
    /// (default 24 h; each lists every blob).
    package var gcOrphanScanInterval: Duration = .seconds(86_400)
    /// How long the orphan scan waits before its second look at what it found (2 min; tests set
    /// it shorter, there is no variable).
    package var gcOrphanRecheckDelay: Duration = .seconds(120)
    /// `RETENTION_POLICY_FILE`: the retention rules (docs/storage.md); none without it.
    package var retention: RetentionPolicy?
    /// `RETENTION_DRY_RUN`: log what retention would delete, delete nothing (default off).
    package var retentionDryRun = false
    /// `RETENTION_INTERVAL`: between retention runs (default 1 h).
    package var retentionInterval: Duration = .seconds(3600)
    /// `PULL_RECORD_INTERVAL`: how often a gateway hands the pulls it saw to the metadata service
    /// (default 10 s), for retention's `notPulledFor`.
    package var pullRecordInterval: Duration = .seconds(10)
    /// `MANIFEST_CACHE_MB`: memory for manifests and blob lookups a gateway keeps (default 64; 0: none).
    package var manifestCacheMB = 64
    /// `BLOB_CACHE_MB`: memory for small blobs' bytes a gateway keeps, so that pulling them again
    /// skips the blob service (default 32 for `pierone gateway`; for `pierone serve`, see
    /// `serveBlobCacheMB`; nil: the command's default).
    package var blobCacheMB: Int?

    /// The blob cache of `pierone serve`: `BLOB_CACHE_MB` when set; else 32 MiB when its blobs
    /// are in S3 and pulls are not redirected there (every read is a request to S3, and a rollout's
    /// nodes share one), and none on the filesystem (the page cache holds its files) or with
    /// `STORAGE_S3_EXTERNAL_STORE` (pulls are redirected and never read).
    package var serveBlobCacheMB: Int {
        if let blobCacheMB { return blobCacheMB }
        guard let s3, !s3.externalStore else { return 0 }
        return 32
    }
    /// `LOG_LEVEL`.
    package var logLevel: String
    /// `LOG_FORMAT`: `text` (default) or `json` (one object per line, for log collectors).
    package var logJSON = false
    /// `DATABASE_URL` or `DB_SUBNAME` (+ `DB_USER`, `DB_PASSWORD`, `PGSSLMODE`, …): PostgreSQL
    /// instead of the embedded SQLite file.
    package var postgres: PostgresSettings?
    /// `HTTP_TOKENINFO_URL`, `HTTP_TEAM_SERVICE_URL`, `HTTP_ALLOW_PUBLIC_READ`, …
    package var auth: AuthSettings
    /// `METADATA_PORT` / `BLOB_PORT`: where `pierone metadata` / `pierone blob` listen.
    package var metadataPort: Int = 8081
    package var blobPort: Int = 8082
    /// `METADATA_URL` / `BLOB_URL`: where `pierone gateway` finds them.
    package var metadataURL: String?
    package var blobURL: String?
    /// `INTERNAL_TLS_CA`, `INTERNAL_TLS_CERT`, `INTERNAL_TLS_KEY`: mutual TLS between the services.
    package var internalTLS: InternalTLS?
    /// `HTTP_TLS_CERT`, `HTTP_TLS_KEY`, `HTTP_TLS_CLIENT_CA`, `HTTP_TLS_RELOAD_INTERVAL`: TLS on the
    /// gateway's public listener (nil: plain HTTP).
    package var publicTLS: PublicTLS?
    /// `HTTP_IDLE_TIMEOUT`: seconds a client connection (an HTTP/2 stream) may send nothing while
    /// no response is being written before it is closed; 0 for never.
    package var idleTimeout = 120
    /// `STORAGE_S3_BUCKET` and the other `STORAGE_S3_*` / `AWS_*` settings: blobs in S3 instead
    /// of under `STORAGE_DIRECTORY`.
    package var s3: S3Settings?
    /// Where tag changes are announced (SNS, webhooks); see `NotificationSettings`.
    package var notifications = NotificationSettings()
    /// `SCM_SOURCE_SCAN`: read pushed layers for `scm-source.json` (default on).
    package var scanLayersForScmSource = true
    /// `BLOB_STREAMS_HTTP2`: let blob byte streams negotiate HTTP/2 too (default HTTP/1.1, faster here).
    package var blobStreamsOverHTTP2 = false

    package init(
        port: Int = 8080, bindAddress: String = "127.0.0.1", storageDirectory: String = "./data",
        tagPolicy: TagPolicy = TagPolicy(), latestIsAlias: Bool = true, uploadMaximumAge: Int = 86_400,
        logLevel: String = "info", postgres: PostgresSettings? = nil, auth: AuthSettings = AuthSettings()
    ) {
        self.port = port
        self.bindAddress = bindAddress
        self.storageDirectory = storageDirectory
        self.tagPolicy = tagPolicy
        self.latestIsAlias = latestIsAlias
        self.uploadMaximumAge = uploadMaximumAge
        self.logLevel = logLevel
        self.postgres = postgres
        self.auth = auth
    }

    /// Reads and validates the environment; throws `ConfigurationError` naming the variable.
    package init(environment: EnvironmentReader) throws {
        if environment.string("HTTP_IIDINFO_URL") != nil {
            throw ConfigurationError(
                "HTTP_IIDINFO_URL",
                "is not used: instance identity documents are verified here; set IID_CERTIFICATES_FILE and IID_ACCOUNTS"
            )
        }
        let mutableTags = TagPolicy.parsePatterns(environment.string("MUTABLE_TAGS", default: "*-SNAPSHOT"))
        var rules: [TagPolicy.Rule] = []
        if let file = environment.string("TAG_POLICY_FILE") {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("TAG_POLICY_FILE", "cannot read \(file)")
            }
            do {
                rules = try TagPolicy.decodeRules(from: data)
            } catch {
                throw ConfigurationError("TAG_POLICY_FILE", "\(file) is not a valid policy: \(error)")
            }
        }
        let auth = try AuthSettings.from(environment)
        let internalTLS = try InternalTLS.from(environment)
        self.init(
            port: try environment.integer("HTTP_PORT", default: 8080, range: 0...65535),
            // Without authentication, only this machine can reach the registry unless told otherwise.
            bindAddress: environment.string("HTTP_BIND_ADDRESS", default: auth.tokenInfoURL == nil ? "127.0.0.1" : "0.0.0.0"),
            storageDirectory: environment.string("STORAGE_DIRECTORY", default: "./data"),
            tagPolicy: TagPolicy(rules: rules, mutableTags: mutableTags),
            latestIsAlias: try environment.bool("LATEST_TAG_ALIAS", default: true),
            uploadMaximumAge: try environment.integer("UPLOAD_MAX_AGE", default: 86_400, range: 60...31_536_000),
            logLevel: environment.string("LOG_LEVEL", default: "info"),
            postgres: try PostgresSettings.from(environment),
            auth: auth
        )
        self.metadataPort = try environment.integer("METADATA_PORT", default: 8081, range: 0...65535)
        self.blobPort = try environment.integer("BLOB_PORT", default: 8082, range: 0...65535)
        self.metadataURL = environment.string("METADATA_URL")
        self.blobURL = environment.string("BLOB_URL")
        self.internalTLS = internalTLS
        self.publicTLS = try PublicTLS.from(environment)
        self.auth.servesTLS = self.publicTLS != nil
        self.idleTimeout = try environment.integer("HTTP_IDLE_TIMEOUT", default: 120, range: 0...86_400)
        self.blobStreamsOverHTTP2 = try environment.bool("BLOB_STREAMS_HTTP2", default: false)
        self.s3 = try S3Settings.from(environment)
        self.notifications = try NotificationSettings(environment: environment)
        switch environment.string("LOG_FORMAT", default: "text") {
        case "text": self.logJSON = false
        case "json": self.logJSON = true
        case let other: throw ConfigurationError("LOG_FORMAT", "must be text or json, not \(other)")
        }
        self.scanLayersForScmSource = try environment.bool("SCM_SOURCE_SCAN", default: true)
        self.gcGracePeriod = try environment.duration("GC_GRACE_PERIOD", default: .seconds(86_400), maximum: 365 * 86_400)
        self.gcEnabled = try environment.bool("GC_ENABLED", default: true)
        self.gcOrphanScanInterval = try environment.duration(
            "GC_ORPHAN_SCAN_INTERVAL", default: .seconds(86_400), maximum: 365 * 86_400
        )
        if self.gcOrphanScanInterval < .seconds(60) {
            throw ConfigurationError("GC_ORPHAN_SCAN_INTERVAL", "must be at least 1 minute (each scan lists the whole storage)")
        }
        if let file = environment.string("RETENTION_POLICY_FILE") {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("RETENTION_POLICY_FILE", "cannot read \(file)")
            }
            guard data.count <= 1 << 20 else {
                throw ConfigurationError("RETENTION_POLICY_FILE", "\(file) is larger than 1 MiB")
            }
            do {
                self.retention = try JSONDecoder().decode(RetentionPolicy.self, from: data)
            } catch {
                throw ConfigurationError("RETENTION_POLICY_FILE", "\(file) is not a valid retention policy: \(error)")
            }
        }
        self.retentionDryRun = try environment.bool("RETENTION_DRY_RUN", default: false)
        self.retentionInterval = try environment.duration("RETENTION_INTERVAL", default: .seconds(3600), maximum: 7 * 86_400)
        if self.retentionInterval < .seconds(1) {
            throw ConfigurationError("RETENTION_INTERVAL", "must be at least 1 second")
        }
        self.pullRecordInterval = try environment.duration("PULL_RECORD_INTERVAL", default: .seconds(10), maximum: 3600)
        if self.pullRecordInterval < .seconds(1) {
            throw ConfigurationError("PULL_RECORD_INTERVAL", "must be at least 1 second")
        }
        self.manifestCacheMB = try environment.integer("MANIFEST_CACHE_MB", default: 64, range: 0...65_536)
        if environment.string("BLOB_CACHE_MB") != nil {
            self.blobCacheMB = try environment.integer("BLOB_CACHE_MB", default: 0, range: 0...65_536)
        }
        self.uploadSessionsPerClient = try environment.integer(
            "UPLOAD_SESSIONS_PER_CLIENT", default: BlobService.defaultSessionsPerClient, range: 1...1_000_000
        )
    }
}
