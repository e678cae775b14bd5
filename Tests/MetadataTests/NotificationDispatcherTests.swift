import AsyncHTTPClient
import Foundation
import Logging
import Testing

@testable import Metadata

@Suite struct NotificationDispatcherTests {
    /// An outbox that holds nothing: these checks need none.
    struct EmptyOutbox: NotificationOutbox {
        func claimNotifications(sink: String, limit: Int, lease: Duration) async throws -> [OutboxEntry] { [] }
        func completeNotification(id: Int64) async throws {}
        func postponeNotification(id: Int64, delay: Duration, error: String) async throws {}
        func notificationBacklog() async throws -> [String: Int] { [:] }
    }

    /// Webhook URLs carry secrets in their user info, query and path (Slack-style URLs are the
    /// secret): labels and log lines keep only scheme, host and port.
    @Test func metricLabelsCarryNoCredentials() {
        #expect(
            NotificationDispatcher.label("webhook:https://user:secret@hooks.example.com/a?token=x#f")
                .hasPrefix("webhook:https://hooks.example.com/…#")
        )
        #expect(NotificationDispatcher.label("webhook:http://hooks.example.com:8443") == "webhook:http://hooks.example.com:8443")
        let slack = NotificationDispatcher.label("webhook:https://hooks.slack.com/services/T000/B000/XXXXSECRET")
        #expect(slack.hasPrefix("webhook:https://hooks.slack.com/…#") && slack.count == "webhook:https://hooks.slack.com/…#".count + 6)
        #expect(!slack.contains("SECRET") && !slack.contains("T000"))
        // Two hooks on one host keep two labels.
        #expect(slack != NotificationDispatcher.label("webhook:https://hooks.slack.com/services/T000/B000/OTHER"))
        #expect(NotificationDispatcher.label("webhook:https://a:b@c@evil.example/x").hasPrefix("webhook:https://evil.example/…#"))
        #expect(NotificationDispatcher.label("webhook:not a url?secret") == "webhook:…")
        #expect(NotificationDispatcher.label("sns:arn:aws:sns:eu-west-1:1:tags") == "sns:arn:aws:sns:eu-west-1:1:tags")
    }

    @Test func retriesBackOffUpToTheMaximum() {
        let dispatcher = NotificationDispatcher(
            outbox: EmptyOutbox(), sinks: [], settings: NotificationSettings(maximumRetryDelay: .seconds(10)),
            http: HTTPClient.shared, logger: Logger(label: "test")
        )
        #expect((1...6).map { dispatcher.retryDelay(afterAttempts: $0) }
            == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10)])
    }

    @Test func noSinksNoDispatcher() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-dispatcher-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try await MetadataService.sqlite(
            path: directory.appendingPathComponent("metadata.sqlite").path, settings: TagSettings(), logger: Logger(label: "test")
        )
        #expect(NotificationDispatcher(service: database.service, settings: NotificationSettings(), logger: Logger(label: "test")) == nil)
        try await database.close()
    }
}
