import Metadata
import PierOneApp
import Runtime
import Testing

/// The settings this session added, read from the environment as `pierone` reads them.
@Suite struct ServeConfigurationTests {
    @Test func logFormatScanAndNotificationsAreRead() throws {
        let defaults = try ServeConfiguration(environment: EnvironmentReader([:]))
        #expect(!defaults.logJSON)
        #expect(defaults.scanLayersForScmSource)
        #expect(defaults.notifications.sinkNames.isEmpty)
        #expect(defaults.blobCacheMB == nil, "unset: the command's own default")
        #expect(defaults.serveBlobCacheMB == 0, "serve on the filesystem reads its files from the page cache")
        let s3 = ["STORAGE_S3_BUCKET": "blobs", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"]
        #expect(try ServeConfiguration(environment: EnvironmentReader(s3)).serveBlobCacheMB == 32, "serve on S3 keeps small blobs")
        #expect(try ServeConfiguration(environment: EnvironmentReader(s3.merging(["STORAGE_S3_EXTERNAL_STORE": "true"]) { $1 }))
            .serveBlobCacheMB == 0, "pulls redirected to S3 never read")
        #expect(try ServeConfiguration(environment: EnvironmentReader(s3.merging(["BLOB_CACHE_MB": "8"]) { $1 })).serveBlobCacheMB == 8)
        let set = try ServeConfiguration(environment: EnvironmentReader([
            "LOG_FORMAT": "json", "SCM_SOURCE_SCAN": "false", "BLOB_CACHE_MB": "0",
            "NOTIFICATION_WEBHOOK_URLS": "https://hooks.example.com/a", "NOTIFICATION_WEBHOOK_SECRET": "sixteen-chars-long",
        ]))
        #expect(set.logJSON)
        #expect(!set.scanLayersForScmSource)
        #expect(set.notifications.sinkNames == ["webhook:https://hooks.example.com/a"])
        #expect(set.blobCacheMB == 0)
    }

    @Test(arguments: [
        (["LOG_FORMAT": "xml"], "LOG_FORMAT"),
        (["SCM_SOURCE_SCAN": "perhaps"], "SCM_SOURCE_SCAN"),
        (["NOTIFICATION_WEBHOOK_URLS": "https://hooks.example.com/a"], "NOTIFICATION_WEBHOOK_SECRET"),
        (["NOTIFICATION_RETRY_MAX_SECONDS": "0"], "NOTIFICATION_RETRY_MAX_SECONDS"),
        (["RETENTION_POLICY_FILE": "/nonexistent/policy.json"], "RETENTION_POLICY_FILE"),
        (["RETENTION_POLICY_FILE": "/dev/null"], "RETENTION_POLICY_FILE"),
        (["RETENTION_INTERVAL": "0"], "RETENTION_INTERVAL"),
        (["RETENTION_INTERVAL": "8d"], "RETENTION_INTERVAL"),
        (["RETENTION_DRY_RUN": "maybe"], "RETENTION_DRY_RUN"),
        (["PULL_RECORD_INTERVAL": "0"], "PULL_RECORD_INTERVAL"),
        (["GC_ORPHAN_SCAN_INTERVAL": "10s"], "GC_ORPHAN_SCAN_INTERVAL"),
        (["BLOB_CACHE_MB": "-1"], "BLOB_CACHE_MB"),
        (["BLOB_CACHE_MB": "lots"], "BLOB_CACHE_MB"),
        (["GC_ORPHAN_SCAN_INTERVAL": "99999999999999999999d"], "GC_ORPHAN_SCAN_INTERVAL"),
    ])
    func badSettingsNameTheVariable(_ environment: [String: String], _ variable: String) {
        do {
            _ = try ServeConfiguration(environment: EnvironmentReader(environment))
            Issue.record("\(environment) was accepted")
        } catch let error as ConfigurationError {
            #expect(error.variable == variable)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
