import Foundation

/// Range checks for numeric options. They run at the start of `run()` (before anything is
/// read or written) and throw `CLIError`, so the user sees one line naming the option, e.g.
/// `Error: --steps must be >= 0, got -5`. Numeric options are declared with
/// `parsing: .unconditional`, so a negative value reaches these checks instead of being
/// mistaken for a flag by the argument parser.
enum OptionCheck {
    static func atLeast<T: Comparable>(_ value: T?, _ minimum: T, _ option: String) throws {
        if let value, value < minimum { throw CLIError("\(option) must be >= \(minimum), got \(value)") }
    }

    static func positive<T: Comparable & Numeric>(_ value: T?, _ option: String) throws {
        if let value, value <= 0 { throw CLIError("\(option) must be > 0, got \(value)") }
    }

    static func within<T: Comparable>(_ value: T?, _ range: ClosedRange<T>, _ option: String) throws {
        if let value, !range.contains(value) {
            throw CLIError("\(option) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }

    static func finite(_ value: Float?, _ option: String) throws {
        if let value, !value.isFinite { throw CLIError("\(option) must be a finite number, got \(value)") }
    }
}

/// A remark for the user that is not an error (clamped values, unknown words): one line on
/// stderr, so stdout stays the command's result.
func note(_ message: String) {
    FileHandle.standardError.write(Data("note: \(message)\n".utf8))
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}
