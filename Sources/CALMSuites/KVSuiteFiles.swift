import CALMCheckpoint
import CALMModels
import CALMSupport
import CALMTokenizers
import CALMTraining
import Foundation

/// Sizes of the generated data sets.
public struct KVSuiteSizes: Sendable, Equatable {
    public var numericExamples = 40000
    public var substitutionExamples = 30000
    public var definitionPasses = 20
    public var dcExamples = 4000
    /// Held-in KV-Substitution lines in each single-expert D_C. The first `dcExamples / 10`
    /// come from the main random stream; the rest from a second stream (seed + 1) after every
    /// other file, so raising this count leaves all other files as they were.
    public var dcSubstitutionExamples = 1200
    public var evalExamples = 1000
    public init() {}
}

/// Everything `calm data kv` writes: key maps, JSONL sets and the shared tokenizer.
public struct KVSuiteFiles: Sendable {
    public var maps: [(name: String, map: KVMap)]
    public var files: [String: [TrainingData.PromptCompletion]]
    public var tokenizer: WordTokenizer

    /// Builds maps for `experts` (disjoint keys, independent values) and these sets:
    /// - `numeric-train.jsonl`, `numeric-eval.jsonl`: Numeric-Arithmetic (the anchor's skill);
    /// - per expert E: `E-train.jsonl` (KV-Substitution over all its keys, plus definition lines
    ///   such as "abc 7 de 3", as facts appear in a domain corpus), `E-dc.jsonl` (D_C:
    ///   KV-Arithmetic over held-in keys, plus 10% as many Numeric-Arithmetic lines and
    ///   `dcSubstitutionExamples` held-in KV-Substitution lines), `E-subst-eval.jsonl` and
    ///   `E-arith-eval.jsonl` (held-out keys only);
    /// - with two or more experts, for the last two: `mixed-dc.jsonl` (held-in keys of both in
    ///   every expression, plus 10% Numeric-Arithmetic) and `mixed-eval.jsonl` (held-out keys).
    public static func build(experts: [String], settings: KVSuiteSettings, sizes: KVSuiteSizes) -> KVSuiteFiles {
        var suite = KVSuite(settings: settings)
        var maps: [(name: String, map: KVMap)] = []
        var used = Set<String>()
        for name in experts {
            let map = suite.makeMap(excluding: used)
            used.formUnion(map.keys.keys)
            maps.append((name, map))
        }
        var files: [String: [TrainingData.PromptCompletion]] = [:]
        files["numeric-train.jsonl"] = (0..<sizes.numericExamples).map { _ in suite.numeric() }
        files["numeric-eval.jsonl"] = (0..<sizes.evalExamples).map { _ in suite.numeric() }
        for (name, map) in maps {
            let all = map.keys.keys.sorted(), heldOut = map.heldOut
            var train = (0..<sizes.substitutionExamples).map { _ in
                suite.kvPair(keys: suite.draw(all, count: suite.termCount()), values: map.keys).substitution
            }
            for _ in 0..<sizes.definitionPasses {
                let order = suite.shuffled(all)
                for start in stride(from: 0, to: order.count, by: 4) {
                    let line = order[start..<min(start + 4, order.count)].map { "\($0) \(map.keys[$0]!)" }.joined(separator: " ")
                    train.append(.init(prompt: "", completion: line))
                }
            }
            files["\(name)-train.jsonl"] = suite.shuffled(train)
            var dc = (0..<sizes.dcExamples).map { _ in
                suite.kvPair(keys: suite.draw(map.heldIn, count: suite.termCount()), values: map.keys).arithmetic
            }
            dc += (0..<(sizes.dcExamples / 10)).map { _ in suite.numeric() }
            dc += (0..<(sizes.dcExamples / 10)).map { _ in
                suite.kvPair(keys: suite.draw(map.heldIn, count: suite.termCount()), values: map.keys).substitution
            }
            files["\(name)-dc.jsonl"] = suite.shuffled(dc)
            let evalPairs = (0..<sizes.evalExamples).map { _ in
                suite.kvPair(keys: suite.draw(heldOut, count: suite.termCount()), values: map.keys)
            }
            files["\(name)-subst-eval.jsonl"] = evalPairs.map(\.substitution)
            files["\(name)-arith-eval.jsonl"] = evalPairs.map(\.arithmetic)
        }
        if maps.count >= 2 {
            let (a, b) = (maps[maps.count - 2].map, maps[maps.count - 1].map)
            let values = a.keys.merging(b.keys) { x, _ in x }
            var dc = (0..<sizes.dcExamples).map { _ in
                suite.kvPair(keys: suite.drawMixed(a.heldIn, b.heldIn, count: suite.termCount()), values: values).arithmetic
            }
            dc += (0..<(sizes.dcExamples / 10)).map { _ in suite.numeric() }
            files["mixed-dc.jsonl"] = suite.shuffled(dc)
            files["mixed-eval.jsonl"] = (0..<sizes.evalExamples).map { _ in
                suite.kvPair(keys: suite.drawMixed(a.heldOut, b.heldOut, count: suite.termCount()), values: values).arithmetic
            }
        }
        var more = KVSuite(settings: settings.withSeed(settings.seed &+ 1))
        for (name, map) in maps {
            var dc = files["\(name)-dc.jsonl"] ?? []
            dc += (0..<max(0, sizes.dcSubstitutionExamples - sizes.dcExamples / 10)).map { _ in
                more.kvPair(keys: more.draw(map.heldIn, count: more.termCount()), values: map.keys).substitution
            }
            files["\(name)-dc.jsonl"] = more.shuffled(dc)
        }
        // One vocabulary for every model. With the dummy prefix space a key or digit is the same
        // token at the start of a text as after a space, as the anchor and the bridges need.
        var pieces = Set(maps.flatMap { $0.map.keys.keys.map { " " + $0 } })
        let splitter = WordTokenizer(pieces: [], addPrefixSpace: true)
        for record in files.values.joined() {
            pieces.formUnion(WordTokenizer.split(splitter.prepared(record.prompt)))
            pieces.formUnion(WordTokenizer.split(splitter.prepared(record.completion)))
        }
        return KVSuiteFiles(maps: maps, files: files, tokenizer: WordTokenizer(pieces: pieces.sorted(), addPrefixSpace: true))
    }
}

extension KVSuiteFiles {
    /// Writes every JSONL set and `vocab.json` to `dataDirectory` and, unless `mapDirectory` is
    /// nil, each key map to `mapDirectory/<expert>.json`, each file atomically. Callers that
    /// must not replace an existing key map pass nil and write the maps themselves.
    public func write(dataDirectory: String, mapDirectory: String?) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        for (name, records) in files.sorted(by: { $0.key < $1.key }) {
            try writeJSONLines(records, to: "\(dataDirectory)/\(name)")
        }
        try writeAtomically(Data(try tokenizer.serialized().utf8), to: "\(dataDirectory)/vocab.json")
        guard let mapDirectory else { return }
        try FileManager.default.createDirectory(atPath: mapDirectory, withIntermediateDirectories: true)
        for (name, map) in maps {
            try writeAtomically(try Self.mapJSON(map), to: "\(mapDirectory)/\(name).json")
        }
    }

    /// A key map as written to `checkpoints/kv/<expert>.json`.
    public static func mapJSON(_ map: KVMap) throws -> Data {
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try pretty.encode(map)
    }
}

extension KVSuite {
    /// A seeded Fisher–Yates shuffle.
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var r = items
        for i in stride(from: r.count - 1, to: 0, by: -1) { r.swapAt(i, int(0...i)) }
        return r
    }
}
