import Contracts
import Foundation
import Hummingbird

/// The one renderer of the OCI error envelope `{"errors":[{"code","message","detail"}]}`.
enum RegistryErrorRenderer {
    private struct Envelope: Encodable {
        struct Entry: Encodable {
            var code: String
            var message: String
            var detail: [String: String]?
        }
        var errors: [Entry]
    }

    static func render(_ error: RegistryError, head: Bool = false) -> Response {
        let envelope = Envelope(errors: [.init(code: error.code.name, message: error.message, detail: error.detail)])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        let json = (try? encoder.encode(envelope)) ?? Data()
        var headers: HTTPFields = [.contentType: "application/json"]
        if error.code == .tooManyRequests {
            headers[.retryAfter] = error.detail?["retryAfter"] ?? "1"
        }
        let buffer = ByteBuffer(bytes: json)
        if head {
            headers[.contentLength] = String(buffer.readableBytes)
            return Response(status: .init(code: error.status), headers: headers, body: .init())
        }
        return Response(status: .init(code: error.status), headers: headers, body: .init(byteBuffer: buffer))
    }
}
