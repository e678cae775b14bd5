import ServiceLifecycle

/// Runs `action` once graceful shutdown begins (closing a database, flushing a file).
struct ShutdownHook: Service {
    let name: String
    let action: @Sendable () async throws -> Void

    func run() async throws {
        try? await gracefulShutdown()
        try await self.action()
    }
}
