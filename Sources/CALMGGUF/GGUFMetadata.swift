/// Typed, checked access to a GGUF file's metadata; errors name the file and the key.
public struct GGUFMetadata: Sendable {
    public let path: String
    public let values: [String: GGUFValue]

    public init(path: String, values: [String: GGUFValue]) {
        self.path = path
        self.values = values
    }

    public init(_ file: GGUFFile) { self.init(path: file.path, values: file.metadata) }

    func fail(_ key: String, _ message: String) -> GGUFError { GGUFError(path: path, "\(key) \(message)") }

    public subscript(key: String) -> GGUFValue? { values[key] }

    /// The value of `key` read by `extract`; absent gives `fallback`, or an error without one.
    private func field<T>(_ key: String, _ fallback: T?, _ kind: String, _ extract: (GGUFValue) -> T?) throws -> T {
        guard let v = values[key] else {
            guard let fallback else { throw fail(key, "is missing") }
            return fallback
        }
        guard let x = extract(v) else {
            if case .array = v { throw fail(key, "is an array \(v.summary), expected \(kind) (per-layer values are not supported)") }
            throw fail(key, "= \(v.summary) is not \(kind)")
        }
        return x
    }

    public func int(_ key: String, default fallback: Int? = nil) throws -> Int { try field(key, fallback, "an integer", \.int) }
    public func double(_ key: String, default fallback: Double? = nil) throws -> Double { try field(key, fallback, "a number", \.number) }
    public func bool(_ key: String, default fallback: Bool? = nil) throws -> Bool { try field(key, fallback, "true or false", \.bool) }
    public func string(_ key: String, default fallback: String? = nil) throws -> String { try field(key, fallback, "a string", \.string) }

    /// A positive integer.
    public func positive(_ key: String, default fallback: Int? = nil) throws -> Int {
        let v = try int(key, default: fallback)
        guard v > 0 else { throw fail(key, "= \(v) must be positive") }
        return v
    }

    public func optionalString(_ key: String) throws -> String? { values[key] == nil ? nil : try string(key) }
    public func optionalInt(_ key: String) throws -> Int? { values[key] == nil ? nil : try int(key) }
    public func optionalDouble(_ key: String) throws -> Double? { values[key] == nil ? nil : try double(key) }
    public func optionalBool(_ key: String) throws -> Bool? { values[key] == nil ? nil : try bool(key) }

    /// An array of strings.
    public func strings(_ key: String) throws -> [String] {
        guard let v = values[key] else { throw fail(key, "is missing") }
        guard case .array(.string, let elements) = v else { throw fail(key, "= \(v.summary) is not an array of strings") }
        return elements.compactMap(\.string)
    }

    /// An array of numbers, or nil when absent.
    public func numbers(_ key: String) throws -> [Double]? {
        guard let v = values[key] else { return nil }
        guard case .array(let type, let elements) = v, type != .string, type != .array, type != .bool else {
            throw fail(key, "= \(v.summary) is not an array of numbers")
        }
        return elements.compactMap(\.number)
    }

    /// An array of integers, or nil when absent.
    public func integers(_ key: String) throws -> [Int]? {
        guard let v = values[key] else { return nil }
        guard case .array(_, let elements) = v else { throw fail(key, "= \(v.summary) is not an array of integers") }
        let out = elements.compactMap(\.int)
        guard out.count == elements.count else { throw fail(key, "= \(v.summary) is not an array of integers") }
        return out
    }
}
