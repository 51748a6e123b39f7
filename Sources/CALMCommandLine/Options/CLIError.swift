/// A problem with the user's input found while a command runs; printed as one line
/// (ArgumentParser's `ValidationError` would add the usage text).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
