import Foundation

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The little XML reading the AWS query and REST-XML answers need (S3, STS, SNS): their answers
/// are small and flat, so the text of an element is found by name.
package enum AWSXML {
    /// The text of the first `<name>` element.
    package static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex)
        else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }

    /// Replaces the five predefined entities.
    package static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
