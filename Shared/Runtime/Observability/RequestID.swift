import HTTPTypes
import Hummingbird
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The id of the request being served, passed from the gateway to the services it calls
/// (`X-Request-Id`) and logged as `request_id` by each of them.
package enum RequestID {
    /// The id of the request the current task serves.
    @TaskLocal package static var current: String?

    package static let header = HTTPField.Name("X-Request-Id")!

    /// A client's id is kept when it is short and plain (so it cannot forge log lines); otherwise
    /// a new one is made.
    package static func accept(_ value: String?) -> String {
        if let value, (1...128).contains(value.utf8.count), value.utf8.allSatisfy(Self.isPlain) {
            return value
        }
        return UUID().uuidString.lowercased()
    }

    /// ASCII letters, digits, `-`, `_` and `.`.
    private static func isPlain(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }
}

/// Gives every request an id (the caller's `X-Request-Id` when it sends a plain one), logs it as
/// `request_id` on the request's logger, passes it to internal calls made while serving it, and
/// answers it in `X-Request-Id`. Logs each request at debug level.
package struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    package init() {}

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let id = RequestID.accept(request.headers[RequestID.header])
        var context = context
        context.logger[metadataKey: "request_id"] = .string(id)
        let start = ContinuousClock.now
        do {
            var response = try await RequestID.$current.withValue(id) { try await next(request, context) }
            response.headers[RequestID.header] = id
            context.logger.debug(
                "request",
                metadata: [
                    "method": .string(request.method.rawValue), "path": .string(request.uri.path),
                    "status": .stringConvertible(response.status.code), "duration": .string("\(ContinuousClock.now - start)"),
                ]
            )
            return response
        } catch {
            context.logger.debug(
                "request failed",
                metadata: ["method": .string(request.method.rawValue), "path": .string(request.uri.path), "error": "\(error)"]
            )
            throw error
        }
    }
}
