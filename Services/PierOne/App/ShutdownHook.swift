import ServiceLifecycle

/// Runs `action` once graceful shutdown begins (closing a database, flushing a file).
struct ShutdownHook: Service, CustomStringConvertible {
    /// ServiceLifecycle logs every service with this at debug level: only what is safe to log
    /// (the default reflection would print webhook URLs, signing keys and credentials).
    package var description: String { "ShutdownHook(\(self.name))" }

    let name: String
    let action: @Sendable () async throws -> Void

    func run() async throws {
        try? await gracefulShutdown()
        // The service group may cancel this task (a failing sibling, a second signal); the action
        // still has to run, so it runs in a task of its own that does not inherit the cancellation.
        try await Task { try await self.action() }.value
    }
}
