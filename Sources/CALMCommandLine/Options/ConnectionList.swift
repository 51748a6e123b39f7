import ArgumentParser
import CALMComposition

/// One `--connections` value: `ANCHOR:AUGMENT,...` for every expert, or `NAME=ANCHOR:AUGMENT,...`
/// for one expert. Only the syntax is checked here; whether the layers exist is checked
/// against the models when they are loaded (`ConnectionRule.parse`).
///
/// Declared with `parsing: .unconditionalSingleValue`, so `--connections -1:0` works with a
/// space as well as with `=` (otherwise "-1:0" looks like a short flag to the parser).
struct ConnectionList: ExpressibleByArgument, Equatable {
    /// nil: every expert.
    var expert: String?
    var pairs: [Connection]

    /// The form `ConnectionRule.parse` reads.
    var spec: String { pairs.map(\.description).joined(separator: ",") }

    struct SyntaxError: Error, CustomStringConvertible {
        let description: String
    }

    init(parsing text: String) throws {
        var body = Substring(text)
        if let eq = text.firstIndex(of: "=") {
            let name = text[..<eq].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw SyntaxError(description: "missing expert name before \"=\"") }
            expert = name
            body = text[text.index(after: eq)...]
        }
        pairs = []
        for part in body.split(separator: ",", omittingEmptySubsequences: false) {
            let fields = part.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 2, let anchor = Int(fields[0]), let augment = Int(fields[1]) else {
                throw SyntaxError(description: "malformed pair \"\(part)\": expected ANCHOR:AUGMENT block indices, e.g. 3:3 or -1:0")
            }
            pairs.append(Connection(anchorLayer: anchor, augmentLayer: augment))
        }
    }

    init?(argument: String) { try? self.init(parsing: argument) }
}
