import Contracts

/// One scope of the Docker token protocol: `repository:<name>:<actions>` or `registry:catalog:*`.
///
/// The name may carry a `host:port/` prefix and may contain colons there, so the type is what
/// precedes the first colon, the actions what follows the last, and the name everything between.
package struct TokenScope: Sendable, Equatable, Codable {
    package var type: String
    package var name: String
    package var actions: [String]

    package init(type: String, name: String, actions: [String]) {
        self.type = type
        self.name = name
        self.actions = actions
    }

    package init?(_ string: some StringProtocol) {
        guard let first = string.firstIndex(of: ":"), let last = string.lastIndex(of: ":"), first < last else { return nil }
        self.type = String(string[..<first])
        var name = Substring(string[string.index(after: first)..<last])
        // `localhost:5000/team/app` → `team/app`: a first component with a port or a dot is a host.
        if let slash = name.firstIndex(of: "/"), name[..<slash].contains(where: { $0 == ":" || $0 == "." }) {
            name = name[name.index(after: slash)...]
        }
        self.name = String(name)
        self.actions = String(string[string.index(after: last)...]).split(separator: ",").map(String.init)
        guard !self.type.isEmpty, !self.name.isEmpty else { return nil }
    }

    package var description: String { "\(self.type):\(self.name):\(self.actions.joined(separator: ","))" }

    /// The scope a request needs, for the `scope` of a Bearer challenge.
    static func needed(for requirement: Requirement) -> TokenScope? {
        switch requirement {
        case .authenticated, .administer: nil
        case .access(_, nil): TokenScope(type: "registry", name: "catalog", actions: ["*"])
        case .access(.pull, let name?): TokenScope(type: "repository", name: name.value, actions: ["pull"])
        case .access(.push, let name?): TokenScope(type: "repository", name: name.value, actions: ["pull", "push"])
        case .access(.delete, let name?): TokenScope(type: "repository", name: name.value, actions: ["delete"])
        }
    }
}
