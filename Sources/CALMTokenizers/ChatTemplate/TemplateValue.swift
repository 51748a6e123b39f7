import Foundation

/// A value inside a chat template (the subset of Jinja's data model templates use).
public enum TemplateValue: Equatable, Sendable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case string(String)
    case list([TemplateValue])
    case dict([String: TemplateValue])

    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .string(let s): return !s.isEmpty
        case .list(let l): return !l.isEmpty
        case .dict(let d): return !d.isEmpty
        }
    }

    /// How `{{ value }}` prints it.
    var rendered: String {
        switch self {
        case .undefined, .none: return ""
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return "\(i)"
        case .string(let s): return s
        case .list, .dict: return json
        }
    }

    /// JSON text (the `tojson` filter).
    var json: String {
        switch self {
        case .undefined, .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return "\(i)"
        case .string(let s):
            let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
            return String(decoding: data, as: UTF8.self)
        case .list(let l): return "[" + l.map(\.json).joined(separator: ", ") + "]"
        case .dict(let d):
            return "{" + d.keys.sorted().map { TemplateValue.string($0).json + ": " + d[$0]!.json }.joined(separator: ", ") + "}"
        }
    }
}
