import AsyncHTTPClient
import Logging
import NIOCore
import Prometheus
import Runtime
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Delivers the outbox: for each sink, claims due entries, sends them in order, removes what was
/// taken and postpones what was not (exponential back-off from one second up to
/// `NOTIFICATION_RETRY_MAX_SECONDS`). At least once: an entry is removed only after its sink
/// answered, so a process stopped between the two sends it again after the claim's lease.
/// Replicas share the work through the claims.
package struct NotificationDispatcher: Service, CustomStringConvertible {
    /// ServiceLifecycle logs every service with this at debug level: only what is safe to log
    /// (the default reflection would print webhook URLs, signing keys and credentials).
    package var description: String { "NotificationDispatcher(sinks: \(self.sinks.map { Redaction.sink($0.name) }))" }

    let outbox: any NotificationOutbox
    let sinks: [any NotificationSink]
    let settings: NotificationSettings
    let logger: Logger
    /// The dispatcher's own HTTP client: it does not retry connecting until the deadline (as the
    /// shared one does), so an unreachable sink fails fast and is retried on the back-off.
    let http: HTTPClient
    /// Waited for before the first claim (PostgreSQL migrations).
    let ready: @Sendable () async -> Void
    /// How long a claimed entry is left to its claimer: a process that dies mid-delivery leaves
    /// its entries to the next claim after this.
    static let lease: Duration = .seconds(30)
    static let batch = 16

    /// The dispatcher of `service`'s outbox for the sinks `settings` names; nil without sinks.
    package init?(
        service: MetadataService, settings: NotificationSettings, logger: Logger,
        ready: @escaping @Sendable () async -> Void = {}
    ) {
        // No client without sinks (shutting one down synchronously would block the caller's thread).
        guard settings.sns != nil || !settings.webhooks.isEmpty else { return nil }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        var sinks: [any NotificationSink] = []
        if let sns = settings.sns {
            sinks.append(SNSSink(settings: sns, credentials: AWSCredentialsProvider(source: sns.credentials, http: http), http: http))
        }
        sinks += settings.webhooks.map { WebhookSink(url: $0.url, secret: $0.secret, http: http) }
        self.init(outbox: service.store, sinks: sinks, settings: settings, http: http, logger: logger, ready: ready)
    }

    init(
        outbox: any NotificationOutbox, sinks: [any NotificationSink], settings: NotificationSettings, http: HTTPClient,
        logger: Logger, ready: @escaping @Sendable () async -> Void = {}
    ) {
        self.outbox = outbox
        self.sinks = sinks
        self.settings = settings
        self.http = http
        self.logger = logger
        self.ready = ready
    }

    /// Runs until graceful shutdown. Nothing to flush then: entries claimed but not delivered are
    /// handed back, and everything not delivered stays in the outbox for the next start (or
    /// another replica).
    package func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.ready()
            await withDiscardingTaskGroup { group in
                for sink in self.sinks {
                    group.addTask { await self.deliverForever(to: sink) }
                }
            }
        }
        try await self.http.shutdown()
    }

    /// Delivers `sink`'s entries until cancelled.
    func deliverForever(to sink: any NotificationSink) async {
        var lastBacklog = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            if ContinuousClock.now - lastBacklog >= .seconds(1) {
                lastBacklog = ContinuousClock.now
                if let backlog = try? await self.outbox.notificationBacklog() {
                    ServiceMetrics.notificationBacklog(sink: Self.label(sink.name)).set(Double(backlog[sink.name] ?? 0))
                }
            }
            let delivered = await self.deliverDue(to: sink)
            if delivered == 0 {
                try? await Task.sleep(for: self.settings.pollInterval)
            }
        }
    }

    /// One round: claims and delivers due entries of `sink`; how many it delivered or tried.
    @discardableResult
    func deliverDue(to sink: any NotificationSink) async -> Int {
        let entries: [OutboxEntry]
        do {
            let outbox = self.outbox
            let name = sink.name
            // Outside the (cancellable) dispatcher task: a claim that committed its lease must
            // also return its entries, or a shutdown could strand them until the lease ends.
            entries = try await Task {
                try await outbox.claimNotifications(sink: name, limit: Self.batch, lease: Self.lease)
            }.value
        } catch {
            self.logger.warning("cannot read the notification outbox", metadata: ["error": "\(error)"])
            return 0
        }
        for (index, entry) in entries.enumerated() {
            if Task.isCancelled {
                await self.handBack(entries[index...])
                break
            }
            await self.deliver(entry, to: sink)
        }
        return entries.count
    }

    /// Makes claimed entries due again at once (shutting down). Runs outside the cancelled task so
    /// the database calls complete.
    private func handBack(_ entries: some Collection<OutboxEntry> & Sendable) async {
        let outbox = self.outbox
        await Task {
            for entry in entries {
                try? await outbox.postponeNotification(id: entry.id, delay: .zero, error: "handed back at shutdown")
            }
        }.value
    }

    private func deliver(_ entry: OutboxEntry, to sink: any NotificationSink) async {
        guard let event = try? JSONDecoder().decode(TagEvent.self, from: Data(entry.payload.utf8)) else {
            self.logger.error("dropping an unreadable notification", metadata: ["id": "\(entry.id)", "sink": "\(Self.label(sink.name))"])
            try? await self.outbox.completeNotification(id: entry.id)
            return
        }
        do {
            try await sink.deliver(NotificationMessage(event, registry: self.settings.registry))
            ServiceMetrics.notificationDeliveries(sink: Self.label(sink.name), result: "delivered").increment()
        } catch where Task.isCancelled {
            await self.handBack([entry])
            return
        } catch {
            ServiceMetrics.notificationDeliveries(sink: Self.label(sink.name), result: "failed").increment()
            let delay = self.retryDelay(afterAttempts: entry.attempts)
            self.logger.warning(
                "notification not delivered; will retry",
                metadata: ["sink": "\(Self.label(sink.name))", "event": "\(event.id)", "attempts": "\(entry.attempts)",
                           "retry_in": "\(delay)", "error": "\(error)"]
            )
            let outbox = self.outbox
            let reason = "\(error)"
            await Task { try? await outbox.postponeNotification(id: entry.id, delay: delay, error: reason) }.value
            return
        }
        do {
            // Outside the cancellable task too: a delivered entry must be removed, shutdown or not.
            let outbox = self.outbox
            try await Task { try await outbox.completeNotification(id: entry.id) }.value
        } catch {
            // Delivered but still in the outbox: it goes out again after the lease (at least once).
            self.logger.warning("delivered notification not removed", metadata: ["id": "\(entry.id)", "error": "\(error)"])
        }
    }

    /// A sink name fit for a metric label or a log line: without a URL's credentials, path or query.
    static func label(_ sink: String) -> String {
        Redaction.sink(sink)
    }

    /// 1 s, 2 s, 4 s … up to the configured maximum.
    func retryDelay(afterAttempts attempts: Int) -> Duration {
        let exponent = min(max(attempts - 1, 0), 20)
        return min(.seconds(1 << exponent), self.settings.maximumRetryDelay)
    }
}
