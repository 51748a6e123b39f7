/// A malformed or hostile GGUF file, or one this project cannot convert. The description is one
/// line: the file, then the problem.
public struct GGUFError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String

    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
