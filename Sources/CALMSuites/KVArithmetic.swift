import CALMTensor
import CALMTraining
import Foundation

/// One expert's key → value map, in the file format of `checkpoints/kv/<expert>.json`.
public struct KVMap: Codable, Sendable, Equatable {
    public var keys: [String: Int]
    /// Keys that composition data (D_C) may use; every evaluated KV expression avoids them.
    public var heldIn: [String]
    public var operators: [String]
    public var minTerms: Int
    public var maxTerms: Int

    enum CodingKeys: String, CodingKey {
        case keys, operators, heldIn = "held_in", minTerms = "min_terms", maxTerms = "max_terms"
    }

    public var heldOut: [String] {
        let inSet = Set(heldIn)
        return keys.keys.filter { !inSet.contains($0) }.sorted()
    }
}

/// Settings of the key-value arithmetic suite (paper §4.1), with this project's deviations.
public struct KVSuiteSettings: Codable, Sendable, Equatable {
    /// Keys per expert (the paper: 25K; the issue asks for at least 500).
    public var keysPerExpert = 500
    /// Values are drawn uniformly with repeats from this range (the paper: distinct values in
    /// [1, N_KV]); single digits keep the anchor's arithmetic learnable on a CPU budget.
    public var minValue = 1
    public var maxValue = 9
    public var operators = ["+", "-"]
    public var minTerms = 3
    public var maxTerms = 3
    /// Fraction of keys D_C may use (the paper: 20%).
    public var heldInFraction = 0.2
    public var seed: UInt64 = 0
    public init() {}

    func withSeed(_ seed: UInt64) -> KVSuiteSettings {
        var copy = self
        copy.seed = seed
        return copy
    }
}

/// Generates keys, maps and the three datasets of the key-value arithmetic suite.
public struct KVSuite {
    public let settings: KVSuiteSettings
    private var generator: SeededGenerator

    public init(settings: KVSuiteSettings) {
        self.settings = settings
        generator = SeededGenerator(seed: settings.seed)
    }

    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(generator.next() % UInt64(range.count))
    }

    /// `count` distinct lowercase keys of 2–6 letters, none in `excluding`.
    public mutating func makeKeys(_ count: Int, excluding: Set<String> = []) -> [String] {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var keys: [String] = []
        var seen = excluding
        while keys.count < count {
            let key = String((0..<int(2...6)).map { _ in letters[int(0...25)] })
            if seen.insert(key).inserted { keys.append(key) }
        }
        return keys
    }

    /// A map over fresh keys with independent values; the first `heldInFraction` of a shuffled
    /// key list is held in.
    public mutating func makeMap(excluding: Set<String> = []) -> KVMap {
        let keys = makeKeys(settings.keysPerExpert, excluding: excluding)
        var values: [String: Int] = [:]
        for k in keys { values[k] = int(settings.minValue...settings.maxValue) }
        var shuffled = keys
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, int(0...i)) }
        let heldIn = Array(shuffled.prefix(Int((Double(keys.count) * settings.heldInFraction).rounded(.down)))).sorted()
        return KVMap(keys: values, heldIn: heldIn, operators: settings.operators,
                     minTerms: settings.minTerms, maxTerms: settings.maxTerms)
    }

    /// Value of `terms[0] op[0] terms[1] ...`, with `*` binding tighter than `+` and `-`.
    public static func evaluate(_ terms: [Int], _ operators: [String]) -> Int {
        precondition(operators.count == terms.count - 1)
        var total = 0, sign = 1, product = terms[0]
        for (op, term) in zip(operators, terms.dropFirst()) {
            if op == "*" {
                product *= term
            } else {
                total += sign * product
                sign = op == "+" ? 1 : -1
                product = term
            }
        }
        return total + sign * product
    }

    static func render(_ items: [String], _ operators: [String]) -> String {
        var s = items[0]
        for (op, item) in zip(operators, items.dropFirst()) { s += " \(op) \(item)" }
        return s
    }

    /// Random operators for an expression of `count` terms.
    public mutating func operators(_ count: Int) -> [String] {
        (0..<(count - 1)).map { _ in settings.operators[int(0...(settings.operators.count - 1))] }
    }

    public mutating func termCount() -> Int { int(settings.minTerms...settings.maxTerms) }

    /// Numeric-Arithmetic: `10 + 22 - 24 =` → ` 8`.
    public mutating func numeric() -> TrainingData.PromptCompletion {
        let n = termCount()
        let values = (0..<n).map { _ in int(settings.minValue...settings.maxValue) }
        let ops = operators(n)
        return .init(prompt: Self.render(values.map(String.init), ops) + " =", completion: " \(Self.evaluate(values, ops))")
    }

    /// KV-Substitution (`abc + de ->` → ` 10 + 22`) and KV-Arithmetic (`abc + de =` → ` 32`) of one key list.
    public mutating func kvPair(keys: [String], values: [String: Int]) -> (substitution: TrainingData.PromptCompletion, arithmetic: TrainingData.PromptCompletion) {
        let ops = operators(keys.count)
        let nums = keys.map { values[$0]! }
        let text = Self.render(keys, ops)
        return (.init(prompt: text + " ->", completion: " " + Self.render(nums.map(String.init), ops)),
                .init(prompt: text + " =", completion: " \(Self.evaluate(nums, ops))"))
    }

    /// Keys drawn from `pool` for one expression.
    public mutating func draw(_ pool: [String], count: Int) -> [String] {
        (0..<count).map { _ in pool[int(0...(pool.count - 1))] }
    }

    /// Keys for a mixed expression: at least one from each pool.
    public mutating func drawMixed(_ a: [String], _ b: [String], count: Int) -> [String] {
        var keys = [a[int(0...(a.count - 1))], b[int(0...(b.count - 1))]]
        while keys.count < count { keys.append(int(0...1) == 0 ? a[int(0...(a.count - 1))] : b[int(0...(b.count - 1))]) }
        for i in stride(from: keys.count - 1, to: 0, by: -1) { keys.swapAt(i, int(0...i)) }
        return keys
    }
}
