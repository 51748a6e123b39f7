import CALMModels
import CALMSuites
import CALMTraining
import Foundation
import Testing

@Suite("Key-value arithmetic suite")
struct KVSuiteTests {
    static let built: KVSuiteFiles = {
        var settings = KVSuiteSettings()
        settings.keysPerExpert = 200
        settings.operators = ["+", "-", "*"]
        settings.minTerms = 3
        settings.maxTerms = 6
        settings.seed = 3
        var sizes = KVSuiteSizes()
        sizes.numericExamples = 300
        sizes.substitutionExamples = 300
        sizes.definitionPasses = 2
        sizes.dcExamples = 300
        sizes.evalExamples = 300
        return KVSuiteFiles.build(experts: ["kv-a", "kv-b"], settings: settings, sizes: sizes)
    }()

    nonisolated(unsafe) static let expression = #/^([a-z]{2,6}|\d+)( [-+*] ([a-z]{2,6}|\d+)){2,5}$/#

    @Test func evaluationFollowsPrecedence() {
        #expect(KVSuite.evaluate([2, 3, 4], ["+", "*"]) == 14)
        #expect(KVSuite.evaluate([2, 3, 4], ["*", "-"]) == 2)
        #expect(KVSuite.evaluate([1, 5, 2, 3], ["-", "*", "+"]) == -6)
        #expect(KVSuite.evaluate([7, 9, 1], ["-", "-"]) == -3)
    }

    @Test func keysAndMaps() {
        let maps = Self.built.maps.map(\.map)
        for map in maps {
            #expect(map.keys.count == 200)
            #expect(map.keys.keys.allSatisfy { $0.count >= 2 && $0.count <= 6 && $0.allSatisfy { ("a"..."z").contains($0) } })
            #expect(map.keys.values.allSatisfy { (1...9).contains($0) })
            #expect(map.heldIn.count <= 40 && map.heldIn.count >= 39)
            #expect(Set(map.heldIn).isSubset(of: Set(map.keys.keys)))
        }
        #expect(Set(maps[0].keys.keys).isDisjoint(with: Set(maps[1].keys.keys)))
        // The map file format named by the issue.
        let json = try! JSONSerialization.jsonObject(with: JSONEncoder().encode(maps[0])) as! [String: Any]
        #expect(Set(json.keys) == ["keys", "held_in", "operators", "min_terms", "max_terms"])
    }

    @Test func formatsAreExact() throws {
        let files = Self.built.files
        for r in files["numeric-eval.jsonl"]! {
            #expect(r.prompt.hasSuffix(" ="))
            let body = String(r.prompt.dropLast(2))
            #expect(body.wholeMatch(of: Self.expression) != nil, "\(r.prompt)")
            let tokens = body.split(separator: " ").map(String.init)
            let value = KVSuite.evaluate(stride(from: 0, to: tokens.count, by: 2).map { Int(tokens[$0])! },
                                         stride(from: 1, to: tokens.count, by: 2).map { tokens[$0] })
            #expect(r.completion == " \(value)")
        }
        let map = Self.built.maps[0].map
        for (sub, arith) in zip(files["kv-a-subst-eval.jsonl"]!, files["kv-a-arith-eval.jsonl"]!) {
            #expect(sub.prompt.hasSuffix(" ->") && arith.prompt.hasSuffix(" ="))
            let body = String(arith.prompt.dropLast(2))
            #expect(String(sub.prompt.dropLast(3)) == body)
            #expect(body.wholeMatch(of: Self.expression) != nil)
            let tokens = body.split(separator: " ").map(String.init)
            let substituted = tokens.enumerated().map { $0.offset % 2 == 0 ? String(map.keys[$0.element]!) : $0.element }
            #expect(sub.completion == " " + substituted.joined(separator: " "))
            let values = stride(from: 0, to: tokens.count, by: 2).map { map.keys[tokens[$0]]! }
            #expect(arith.completion == " \(KVSuite.evaluate(values, stride(from: 1, to: tokens.count, by: 2).map { tokens[$0] }))")
        }
        #expect(files["numeric-eval.jsonl"]!.contains { $0.completion.hasPrefix(" -") })
    }

    func keys(in record: TrainingData.PromptCompletion) -> [String] {
        record.prompt.split(separator: " ").map(String.init).filter { $0.first!.isLetter }
    }

    @Test func heldOutKeysNeverReachCompositionData() {
        let files = Self.built.files
        let (a, b) = (Self.built.maps[0].map, Self.built.maps[1].map)
        let heldIn = Set(a.heldIn).union(b.heldIn), heldOut = Set(a.heldOut).union(b.heldOut)
        for name in ["kv-a-dc.jsonl", "kv-b-dc.jsonl", "mixed-dc.jsonl"] {
            for r in files[name]! { #expect(Set(keys(in: r)).isSubset(of: heldIn), "\(name): \(r.prompt)") }
        }
        for name in ["kv-a-subst-eval.jsonl", "kv-a-arith-eval.jsonl", "kv-b-arith-eval.jsonl", "mixed-eval.jsonl"] {
            #expect(files[name]!.count == 300)
            for r in files[name]! { #expect(Set(keys(in: r)).isSubset(of: heldOut), "\(name): \(r.prompt)") }
        }
        // D_C mixes in some of the anchor's own task.
        #expect(files["kv-a-dc.jsonl"]!.filter { keys(in: $0).isEmpty }.count == 30)
    }

    @Test func mixedExpressionsReallyMix() {
        let (a, b) = (Set(Self.built.maps[0].map.keys.keys), Set(Self.built.maps[1].map.keys.keys))
        for name in ["mixed-dc.jsonl", "mixed-eval.jsonl"] {
            for r in Self.built.files[name]! where !keys(in: r).isEmpty {
                let k = Set(keys(in: r))
                #expect(!k.isDisjoint(with: a) && !k.isDisjoint(with: b), "\(r.prompt)")
            }
        }
    }

    @Test func oneTokenizerCoversEverythingAndKeysAreSingleTokens() {
        let t = Self.built.tokenizer
        for records in Self.built.files.values {
            for r in records.prefix(50) {
                let text = r.prompt + r.completion
                #expect(!t.encode(text).contains(t.unknownID))
                #expect(t.decode(t.encode(text)) == text)
            }
        }
        let key = Self.built.maps[0].map.keys.keys.sorted()[0]
        #expect(t.encode(key).count == 1 && t.encode(" " + key) == t.encode(key))  // dummy prefix space
        #expect(t.encode(" 10").count == 2)  // numbers are split into digits
    }
}
