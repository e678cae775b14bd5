import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PierOneApp
import Runtime
import TestSupport
import Testing

/// The garbage collection administration (`/gc/`, `pierone gc`): the dry run lists what will go
/// and why before it goes, `why` says what keeps a digest, a run reports what it reclaimed, and
/// only administrators (or loopback without authentication) may ask.
@Suite(.serialized) struct GarbageAdminTests {
    static let command: HTTPFields = [HTTPField.Name("X-PierOne-Command")!: "test"]

    static func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(String(buffer: response.body).utf8))
    }

    /// Push, delete, dry run (the blobs are listed with their size and due time), wait out a
    /// short grace period: the bytes are gone from the disk. `why` follows each step.
    @Test(arguments: Backend.allCases) func theDryRunListsWhatThenGoes(_ backend: Backend) async throws {
        let policy = try JSONDecoder().decode(RetentionPolicy.self, from: Data(#"""
            {"rules": [{"name": "snapshots", "repositories": ["team/*"], "tags": ["*-SNAPSHOT"], "keepLast": 1}]}
            """#.utf8))
        try await RegistryHarness.withRegistry(backend, configure: {
            $0.gcGracePeriod = .seconds(4)
            $0.tagPolicy = TagPolicy(mutableTags: [Glob("*")])
            $0.retention = policy
            // Retention runs only when asked here.
            $0.retentionInterval = .seconds(3600)
        }) { registry in
            let kept = try #require(try await GarbageCollectionTests.push(
                registry, to: "team/app", tag: "1.0", layers: ["shared admin layer", "kept admin layer"]
            ))
            let dropped = try #require(try await GarbageCollectionTests.push(
                registry, to: "team/app", tag: "2.0", config: #"{"dropped":1}"#, layers: ["shared admin layer", "dropped admin layer"]
            ))
            for number in 1...2 {
                _ = try #require(try await GarbageCollectionTests.push(
                    registry, to: "team/app", tag: "\(number)-SNAPSHOT", config: #"{"s":\#(number)}"#, layers: ["snapshot \(number)"]
                ))
            }
            let droppedLayer = DigestHasher.digest(of: ByteBuffer(string: "dropped admin layer"))
            let sharedLayer = DigestHasher.digest(of: ByteBuffer(string: "shared admin layer"))
            var why = try Self.decode(GarbageExplanation.self, try await registry.request(.get, "/gc/why/\(droppedLayer)"))
            #expect(why.verdict.hasPrefix("kept: referenced by \(dropped)"), "\(why.verdict)")
            #expect(try await registry.request(.delete, "/v2/team/app/manifests/\(dropped)").status == .accepted)

            // The dry run: retention would delete 1-SNAPSHOT; the queue holds the dropped image's
            // own blobs (not the shared layer), due after the grace period.
            let response = try await registry.request(.get, "/gc/plan")
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            let plan = try Self.decode(GarbagePlan.self, response)
            #expect(plan.retention?.deletions.map(\.tag) == ["1-SNAPSHOT"], "\(plan)")
            #expect(plan.retention?.deletions.first?.reason.contains("newest 1") == true)
            let listed = Set(plan.candidates.filter { $0.bytes != nil }.map(\.digest))
            let droppedConfig = DigestHasher.digest(of: ByteBuffer(string: #"{"dropped":1}"#))
            #expect(listed.isSuperset(of: [droppedLayer.description, droppedConfig.description]), "\(plan.candidates)")
            #expect(!listed.contains(sharedLayer.description))
            #expect(plan.candidates.first { $0.digest == droppedLayer.description }?.bytes == Int64("dropped admin layer".utf8.count))
            #expect(plan.gracePeriodSeconds == 4 && plan.collecting)
            let text = GarbageClient.render(plan)
            #expect(text.contains("team/app:1-SNAPSHOT") && text.contains(droppedLayer.description), "\(text)")
            // Nothing was deleted by the dry run.
            #expect(try await registry.request(.get, "/v2/team/app/manifests/1-SNAPSHOT").status == .ok)
            #expect(GarbageCollectionTests.blobFiles(registry.directory).contains { $0.contains(droppedLayer.hex) })

            why = try Self.decode(GarbageExplanation.self, try await registry.request(.get, "/gc/why/\(droppedLayer)"))
            #expect(why.verdict.hasPrefix("garbage: no manifest references it"), "\(why.verdict)")
            why = try Self.decode(GarbageExplanation.self, try await registry.request(.get, "/gc/why/\(sharedLayer)"))
            #expect(why.verdict.contains("referenced by \(kept)") && why.verdict.contains("tagged 1.0"), "\(why.verdict)")
            why = try Self.decode(GarbageExplanation.self, try await registry.request(.get, "/gc/why/\(kept)"))
            #expect(why.verdict.hasPrefix("kept: tagged 1.0 in team/app"), "\(why.verdict)")

            // The grace period passes: the bytes go.
            try await GarbageCollectionTests.eventually("the dropped image's bytes leave the disk") {
                !GarbageCollectionTests.blobFiles(registry.directory).contains { $0.contains(droppedLayer.hex) }
            }
            why = try Self.decode(GarbageExplanation.self, try await registry.request(.get, "/gc/why/\(droppedLayer)"))
            #expect(why.verdict.hasPrefix("unknown") || why.verdict.hasPrefix("collected"), "\(why.verdict)")

            // A run now: retention deletes 1-SNAPSHOT (its manifest with it); the report says so.
            // Not without the command's header: a web page cannot start a run on a developer's machine.
            #expect(try await registry.request(.post, "/gc/run").status == .forbidden)
            let run = try await registry.request(.post, "/gc/run", headers: Self.command)
            #expect(run.status == .ok)
            let report = try Self.decode(GarbageRunReport.self, run)
            #expect(report.retention?.deletions.map(\.tag) == ["1-SNAPSHOT"])
            #expect(GarbageClient.render(report).contains("Retention deleted 1 tags"))
            #expect(try await registry.request(.get, "/v2/team/app/manifests/1-SNAPSHOT").status == .notFound)
            #expect(try await registry.request(.get, "/v2/team/app/manifests/2-SNAPSHOT").status == .ok)
            #expect(try await registry.request(.get, "/gc/why/nonsense").status == .badRequest)
            for limit in ["0", "1001", "99999999999999999999", "ten"] {
                #expect(try await registry.request(.get, "/gc/plan?limit=\(limit)").status == .badRequest, "\(limit)")
            }
        }
    }

    /// The orphan scan: a blob file no row holds, written long ago, is listed by the dry run and
    /// deleted by a run; one written just now (a commit about to be recorded) and an old file a
    /// manifest references stay.
    @Test(arguments: Backend.allCases) func orphansAreFoundAndDeleted(_ backend: Backend) async throws {
        try await RegistryHarness.withRegistry(backend, configure: {
            $0.gcOrphanRecheckDelay = .milliseconds(200)
        }) { registry in
            _ = try #require(try await GarbageCollectionTests.push(registry, to: "team/app", tag: "1.0", layers: ["referenced layer"]))
            let layer = DigestHasher.digest(of: ByteBuffer(string: "referenced layer"))
            let blobs = registry.directory.appendingPathComponent("blobs/sha256")
            let twoDaysAgo = Date().addingTimeInterval(-2 * 86400)
            func file(_ digest: Digest) throws -> URL {
                let directory = blobs.appendingPathComponent(String(digest.hex.prefix(2)))
                let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix(digest.hex) })
                return directory.appendingPathComponent(name)
            }
            let referenced = try file(layer)
            try FileManager.default.setAttributes([.modificationDate: twoDaysAgo], ofItemAtPath: referenced.path)
            // Orphans as a crash between a commit and its link leaves them.
            func orphan(_ content: String, modified: Date) throws -> URL {
                let digest = DigestHasher.digest(of: ByteBuffer(string: content))
                let directory = blobs.appendingPathComponent(String(digest.hex.prefix(2)))
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                let url = directory.appendingPathComponent("\(digest.hex).\(UUID().uuidString.lowercased())")
                try Data(content.utf8).write(to: url)
                try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: url.path)
                return url
            }
            let old = try orphan("an old orphan", modified: twoDaysAgo)
            let fresh = try orphan("a fresh orphan", modified: Date())

            let response = try await registry.request(.get, "/gc/plan?orphans=true")
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            let scan = try #require(try Self.decode(GarbagePlan.self, response).orphans)
            #expect(scan.found == 1 && scan.orphans.map(\.location) == ["blobs/sha256/" + old.path.split(separator: "/").suffix(2).joined(separator: "/")], "\(scan)")
            #expect(scan.listed >= 4 && scan.foundBytes == Int64("an old orphan".utf8.count))
            #expect(FileManager.default.fileExists(atPath: old.path), "a dry run deletes nothing")

            let run = try await registry.request(.post, "/gc/run?orphans=true", headers: Self.command)
            #expect(run.status == .ok)
            let report = try Self.decode(GarbageRunReport.self, run)
            #expect(report.orphans?.deleted == 1, "\(report)")
            #expect(GarbageClient.render(report).contains("1 deleted"))
            #expect(!FileManager.default.fileExists(atPath: old.path))
            #expect(FileManager.default.fileExists(atPath: fresh.path))
            let blob = try await registry.request(.get, "/v2/team/app/blobs/\(layer)")
            #expect(blob.status == .ok && String(buffer: blob.body) == "referenced layer")
        }
    }

    /// With authentication, only `application.write_all` may administer; anonymous callers are
    /// challenged; a team member or a service with `application.write` is refused.
    @Test func onlyAdministratorsMayAsk() async throws {
        try await AuthenticationTests.withSecuredRegistry { registry, _ in
            #expect(try await registry.request(.get, "/gc/plan").status == .unauthorized)
            for token in ["employee-token", "service-token"] {
                var headers = Self.command
                headers[.authorization] = "Bearer \(token)"
                let refused = try await registry.request(.post, "/gc/run", headers: headers)
                #expect(refused.status == .forbidden, "\(token)")
                #expect(String(buffer: refused.body).contains("application.write_all"))
            }
            // Paths the router takes for the same routes (empty components) are authenticated too.
            for path in ["/gc/run/", "//gc/run", "/gc//run", "/gc/run//"] {
                #expect(try await registry.request(.post, path, headers: Self.command).status == .unauthorized, "\(path)")
                var headers = Self.command
                headers[.authorization] = "Bearer employee-token"
                #expect(try await registry.request(.post, path, headers: headers).status == .forbidden, "\(path)")
            }
            for path in ["/gc/plan/", "//gc/plan", "/gc//why/sha256:\(String(repeating: "0", count: 64))"] {
                #expect(try await registry.request(.get, path).status == .unauthorized, "\(path)")
            }
            let plan = try await registry.request(.get, "/gc/plan", headers: [.authorization: "Bearer admin-token"])
            #expect(plan.status == .ok, "\(String(buffer: plan.body))")
            #expect(try Self.decode(GarbagePlan.self, plan).retention == nil)
        }
    }

    /// The command's client against a live registry: errors are reported, a run is printed.
    @Test func theCommandReportsErrorsAndRuns() async throws {
        try await AuthenticationTests.withSecuredRegistry { registry, _ in
            let anonymous = GarbageClient(url: "http://127.0.0.1:\(registry.port)", token: nil)
            await #expect {
                _ = try await anonymous.plan()
            } throws: { error in
                "\(error)".contains("UNAUTHORIZED") && "\(error)".contains("PIERONE_TOKEN")
            }
            let admin = GarbageClient(url: "http://127.0.0.1:\(registry.port)/", token: "admin-token")
            let report = try await admin.run()
            #expect(GarbageClient.render(report).hasPrefix("Collected: "))
            await #expect(throws: GarbageClient.Failure.self) { _ = try await admin.why("sha256:short") }
        }
    }
}
