import Contracts
import Hummingbird
import Logging

/// The one mapping from a failure to what a caller sees, used by the public renderer (the OCI
/// envelope) and the internal one (JSON `RegistryError`): a `RegistryError` as thrown, a
/// framework's `HTTPError` by its status (the catalog's code for it), anything else `UNKNOWN` —
/// its text goes to the log, never to the caller.
package enum ErrorMapping {
    package static func registryError(_ error: any Error, logger: Logger) -> RegistryError {
        switch error {
        case let error as RegistryError:
            return error
        case let error as HTTPError:
            return RegistryError(status: Int(error.status.code), message: error.body)
        default:
            logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return RegistryError(.unknown)
        }
    }
}
