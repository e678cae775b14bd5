/// A setting that cannot be used, named so the operator knows what to fix.
package struct ConfigurationError: Error, CustomStringConvertible {
    package var variable: String
    package var problem: String

    package init(_ variable: String, _ problem: String) {
        self.variable = variable
        self.problem = problem
    }

    package var description: String { "\(self.variable): \(self.problem)" }
}
