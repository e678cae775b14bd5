import Contracts
import Foundation
import Logging
import SQLiteNIO
import Testing

@testable import Metadata

@Suite struct SQLiteStoreTests {
    @Test(arguments: MetadataStoreConformance.all.map(\.0))
    func conformance(_ name: String) async throws {
        let check = try #require(MetadataStoreConformance.all.first { $0.0 == name }?.1)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-sqlite-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await SQLiteMetadataStore.open(
            path: directory.appendingPathComponent("metadata.sqlite").path, outboxSinks: MetadataStoreConformance.sinks,
            logger: Logger(label: "test")
        )
        do {
            try await check(store)
        } catch {
            try await store.close()
            throw error
        }
        try await store.close()
    }

    @Test func refusesADatabaseNewerThanTheCode() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-sqlite-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("metadata.sqlite").path
        let store = try await SQLiteMetadataStore.open(path: path, logger: Logger(label: "test"))
        try await store.close()
        let raw = try await SQLiteMetadataStore.rawConnection(path: path)
        _ = try await raw.query("INSERT INTO schema_version (version) VALUES (999)")
        try await raw.close()
        await #expect(throws: MigrationError.self) {
            _ = try await SQLiteMetadataStore.open(path: path, logger: Logger(label: "test"))
        }
    }
}
