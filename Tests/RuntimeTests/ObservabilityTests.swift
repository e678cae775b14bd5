import Foundation
import Logging
import Runtime
import Synchronization
import Testing

@Suite struct ObservabilityTests {
    @Test func jsonLogLinesCarryEveryField() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "pierone.test") { label in
            JSONLogHandler(label: label) { line in lines.withLock { $0.append(line) } }
        }
        logger[metadataKey: "request_id"] = "abc-123"
        logger.info("pushed \"quoted\"\nnewline", metadata: ["repository": "team/app", "count": .stringConvertible(3)])
        logger.debug("not at info level")
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().contains("\n") == false, "one line per event")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "pushed \"quoted\"\nnewline")
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "pierone.test")
        #expect(object["request_id"] as? String == "abc-123")
        #expect(object["repository"] as? String == "team/app")
        #expect(object["count"] as? String == "3")
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
    }

    @Test func requestIDsFromClientsAreKeptOnlyWhenPlain() {
        #expect(RequestID.accept("build-42.step_1") == "build-42.step_1")
        for hostile in ["", "has space", "new\nline", "quote\"", String(repeating: "a", count: 129), "ünïcode"] {
            let id = RequestID.accept(hostile)
            #expect(id != hostile)
            #expect(UUID(uuidString: id) != nil)
        }
        #expect(UUID(uuidString: RequestID.accept(nil)) != nil)
    }
}
