import Contracts
import Logging
import NIOSSL
import PostgresNIO
import ServiceLifecycle

/// Feeds a `ChangeLog` from PostgreSQL: every replica's commits that change a cached answer
/// announce the repository on the channel `pierone_changes` (triggers of migration 5), and this
/// replica listens on a connection of its own (not one of the pool's).
///
/// Freshness is proven, not assumed: every `beatInterval` the listener sends a heartbeat
/// `NOTIFY` of its own through the same channel and, when it comes back, confirms the log as of
/// the moment it was sent (notifications arrive in commit order). A channel that breaks or stalls
/// stops confirming, so caches behind this log stop trusting what they hold within their bound
/// and ask the database; when the channel is back, a gap is logged first (everything may have
/// changed meanwhile) and caches start afresh.
package struct PostgresChangeListener: Service, CustomStringConvertible {
    /// What service lifecycle logs: not the settings, which hold the password.
    package var description: String { "PostgresChangeListener" }

    static let channel = "pierone_changes"
    static let beatInterval = Duration.milliseconds(200)
    static let stallLimit = Duration.seconds(5)

    let settings: PostgresSettings
    let log: ChangeLog
    let logger: Logger

    package init(settings: PostgresSettings, log: ChangeLog, logger: Logger) {
        self.settings = settings
        self.log = log
        self.logger = logger
    }

    package func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.listenOnce()
                } catch is CancellationError {
                    break
                } catch {
                    self.log.lose()
                    self.logger.warning(
                        "metadata change channel lost; caches ask the database until it is back",
                        metadata: ["error": "\(String(reflecting: error))"]
                    )
                }
                self.log.lose()
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func configuration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS = switch (self.settings.sslMode, self.settings.tlsConfiguration()) {
        case (.disable, _), (_, nil): .disable
        case (.prefer, let configuration?): .prefer(try NIOSSLContext(configuration: configuration))
        case (_, let configuration?): .require(try NIOSSLContext(configuration: configuration))
        }
        var configuration = PostgresConnection.Configuration(
            host: self.settings.host, port: self.settings.port, username: self.settings.username,
            password: self.settings.password, database: self.settings.database, tls: tls
        )
        configuration.options.connectTimeout = .seconds(Int64(min(self.settings.timeout, 10)))
        configuration.options.additionalStartupParameters = [("application_name", "pierone-changes")]
        return configuration
    }

    /// One connection's life: connect, LISTEN, follow until something fails. Every step runs in
    /// a task of its own and this waits for the first failure only: a connection the database
    /// ended or that stalls can leave a query or the notification stream waiting forever, and
    /// the listener must go on (and a shutdown must end) regardless. Whatever is left waiting is
    /// cancelled and its connection closed.
    private func listenOnce() async throws {
        let (failures, signal) = AsyncStream<any Error>.makeStream()
        let sent = SentBeats()
        let connected = Task<PostgresConnection?, Never> {
            do {
                return try await PostgresConnection.connect(configuration: try self.configuration(), id: 0, logger: self.logger)
            } catch {
                signal.yield(error)
                return nil
            }
        }
        let following = Task {
            guard let connection = await connected.value else { return }
            do {
                try await connection.listen(on: Self.channel) { notifications in
                    // Whatever was committed before LISTEN took effect was not heard: caches start afresh.
                    self.log.recordGap()
                    await sent.listening()
                    try await self.follow(notifications, sent: sent)
                }
                signal.yield(RegistryError(.unavailable, "the database closed the change channel"))
            } catch {
                signal.yield(error)
            }
        }
        let beating = Task {
            guard let connection = await connected.value else { return }
            let prefix = "beat:" + self.log.epoch + ":"
            var number = 0
            do {
                while true {
                    number += 1
                    await sent.add(number, at: .now)
                    try await connection.query("SELECT pg_notify(\(Self.channel), \(prefix + String(number)))", logger: self.logger)
                    try await Task.sleep(for: Self.beatInterval)
                }
            } catch {
                signal.yield(error)
            }
        }
        // No heartbeat back for this long (from the start on: connecting and LISTEN included): replaced.
        let watchdog = Task {
            let started = ContinuousClock.now
            while ContinuousClock.now - (await sent.lastBack ?? started) <= Self.stallLimit {
                try? await Task.sleep(for: .milliseconds(500))
                if Task.isCancelled { return }
            }
            signal.yield(RegistryError(.unavailable, "no heartbeat came back through the change channel"))
        }
        defer {
            for task in [following, beating, watchdog] { task.cancel() }
            connected.cancel()
            Task { try? await connected.value?.close() }
            signal.finish()
        }
        var iterator = failures.makeAsyncIterator()
        // nil: this task was cancelled (a shutdown).
        guard let failure = await iterator.next() else { throw CancellationError() }
        throw failure
    }

    /// Logs every notification but heartbeats; confirms the log when one of its own comes back.
    private func follow(_ notifications: PostgresNotificationSequence, sent: SentBeats) async throws {
        let prefix = "beat:" + self.log.epoch + ":"
        for try await notification in notifications {
            let payload = notification.payload
            if payload.hasPrefix(prefix) {
                if let number = Int(payload.dropFirst(prefix.utf8.count)), let at = await sent.take(number) {
                    self.log.confirm(sentAt: at)
                }
            } else if payload.hasPrefix("beat:") {
                continue  // another replica's heartbeat
            } else if let repository = RepositoryName(payload) {
                self.log.record(repository)
            } else {
                self.log.recordGap()
            }
        }
    }
}

/// Heartbeats sent and not yet back, by number (the oldest are forgotten).
private actor SentBeats {
    private var sent: [Int: ContinuousClock.Instant] = [:]
    /// When the last heartbeat came back.
    private(set) var lastBack: ContinuousClock.Instant?

    func add(_ number: Int, at instant: ContinuousClock.Instant) {
        self.sent[number] = instant
        self.sent[number - 64] = nil
    }

    /// LISTEN took effect: the stall clock starts again from here.
    func listening() {
        self.lastBack = .now
    }

    func take(_ number: Int) -> ContinuousClock.Instant? {
        guard let instant = self.sent.removeValue(forKey: number) else { return nil }
        self.lastBack = .now
        return instant
    }
}
