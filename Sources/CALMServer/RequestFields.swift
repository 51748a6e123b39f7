import CALMSupport
import Foundation

/// Typed, strict access to a request body's fields: a wrong type or out-of-range value is a
/// 400 naming the field, and fields nobody read are reported (unknown fields are refused).
struct RequestFields {
    private let fields: [String: JSONValue]
    private var read: Set<String> = []

    init(body: [UInt8]) throws(APIError) {
        guard let value = JSONValue.parse(Data(body)) else {
            throw APIError.badRequest("the request body is not valid JSON")
        }
        guard case .object(let fields) = value else { throw APIError.badRequest("the request body must be a JSON object") }
        self.fields = fields
    }

    /// The field, unless absent or null.
    private mutating func value(_ name: String) -> JSONValue? {
        read.insert(name)
        guard let v = fields[name], !v.isNull else { return nil }
        return v
    }

    mutating func string(_ name: String) throws(APIError) -> String? {
        guard let v = value(name) else { return nil }
        guard let s = v.string else { throw APIError.badRequest("'\(name)' must be a string", param: name) }
        return s
    }

    mutating func requiredString(_ name: String) throws(APIError) -> String {
        guard let s = try string(name) else { throw APIError.badRequest("'\(name)' is required", param: name) }
        return s
    }

    mutating func bool(_ name: String) throws(APIError) -> Bool? {
        guard let v = value(name) else { return nil }
        guard let b = v.bool else { throw APIError.badRequest("'\(name)' must be a boolean", param: name) }
        return b
    }

    mutating func int(_ name: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let v = value(name) else { return nil }
        // 3.0 is accepted as 3 (clients written in JavaScript send whole numbers as floats).
        let whole = v.int ?? v.number.flatMap { $0.rounded() == $0 && abs($0) < 1e15 ? Int($0) : nil }
        guard let i = whole else { throw APIError.badRequest("'\(name)' must be an integer", param: name) }
        guard range.contains(i) else {
            throw APIError.badRequest("'\(name)' must be between \(range.lowerBound) and \(range.upperBound), got \(i)", param: name)
        }
        return i
    }

    mutating func number(_ name: String, in range: ClosedRange<Double>) throws(APIError) -> Double? {
        guard let v = value(name) else { return nil }
        guard let d = v.number, d.isFinite else { throw APIError.badRequest("'\(name)' must be a number", param: name) }
        guard range.contains(d) else {
            throw APIError.badRequest("'\(name)' must be between \(range.lowerBound) and \(range.upperBound), got \(d)", param: name)
        }
        return d
    }

    mutating func raw(_ name: String) -> JSONValue? { value(name) }

    /// Fields OpenAI clients may send that change nothing here, accepted only at their neutral value.
    mutating func acceptNeutral() throws(APIError) {
        if let n = try int("n", in: 1...1), n != 1 { throw APIError.badRequest("'n' must be 1", param: "n") }
        for name in ["presence_penalty", "frequency_penalty"] {
            if let p = try number(name, in: 0...0), p != 0 { throw APIError.badRequest("'\(name)' must be 0", param: name) }
        }
        _ = try string("user")
    }

    /// Refuses fields that were never read: a misspelt option must not be silently ignored.
    func rejectUnknown() throws(APIError) {
        let unknown = fields.keys.filter { !read.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        throw APIError.badRequest("unknown field '\(first)'" + (unknown.count > 1 ? " (and \(unknown.count - 1) more)" : ""),
                                  param: first)
    }
}
