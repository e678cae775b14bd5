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

    @Test func metricLabelsCarryNoCredentials() {
        #expect(
            NotificationDispatcher.label("webhook:https://user:secret@hooks.example.com/a?token=x#f")
                == "webhook:https://hooks.example.com/a"
        )
        #expect(NotificationDispatcher.label("webhook:http://hooks.example.com/a") == "webhook:http://hooks.example.com/a")
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
