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
        let set = try ServeConfiguration(environment: EnvironmentReader([
            "LOG_FORMAT": "json", "SCM_SOURCE_SCAN": "false",
            "NOTIFICATION_WEBHOOK_URLS": "https://hooks.example.com/a", "NOTIFICATION_WEBHOOK_SECRET": "sixteen-chars-long",
        ]))
        #expect(set.logJSON)
        #expect(!set.scanLayersForScmSource)
        #expect(set.notifications.sinkNames == ["webhook:https://hooks.example.com/a"])
    }

    @Test(arguments: [
        (["LOG_FORMAT": "xml"], "LOG_FORMAT"),
        (["SCM_SOURCE_SCAN": "perhaps"], "SCM_SOURCE_SCAN"),
        (["NOTIFICATION_WEBHOOK_URLS": "https://hooks.example.com/a"], "NOTIFICATION_WEBHOOK_SECRET"),
        (["NOTIFICATION_RETRY_MAX_SECONDS": "0"], "NOTIFICATION_RETRY_MAX_SECONDS"),
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
