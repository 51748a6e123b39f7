import CALMSuites
import Foundation
import Testing

@Suite("Invented-knowledge suite")
struct KnowledgeSuiteTests {
    static func small(seed: UInt64 = 3, experts: [String] = ["atlas-a", "atlas-b"]) throws -> KnowledgeSuiteFiles {
        var settings = KnowledgeSuiteSettings()
        settings.entitiesPerExpert = 50
        settings.corpusPasses = 2
        settings.evalExamples = 40
        settings.seed = seed
        return try KnowledgeSuiteFiles.build(experts: experts, settings: settings, promptFormat: "Q: {question}\nA:",
                                         completionFormat: " {answer}")
    }

    @Test func theSameSeedGivesTheSameFilesAndAnotherSeedOthers() throws {
        let a = try Self.small(), b = try Self.small(), c = try Self.small(seed: 4)
        #expect(a.sets == b.sets && a.corpora == b.corpora)
        #expect(try a.facts.map { try $0.facts.json() } == b.facts.map { try $0.facts.json() })
        #expect(a.sets["atlas-a-dc.jsonl"] != c.sets["atlas-a-dc.jsonl"])
    }

    /// D_C only ever mentions held-in countries; every evaluation question is about a held-out
    /// one and expects its stored value; the experts' countries are disjoint.
    @Test func heldOutCountriesAppearOnlyInTheCorpusAndEvaluation() throws {
        let suite = try Self.small()
        let (a, b) = (suite.facts[0].facts, suite.facts[1].facts)
        #expect(Set(a.entities.keys).isDisjoint(with: b.entities.keys))
        #expect(a.entities.count == 50 && a.heldIn.count == 10 && a.heldOut.count == 40)
        func mentioned(_ text: String, in facts: KnowledgeFacts) -> [String] { facts.entities.keys.filter { text.contains($0) } }
        for record in suite.sets["atlas-a-dc.jsonl"]! {
            let names = mentioned(record.prompt, in: a)
            #expect(names.count == 1 && a.heldIn.contains(names[0]))
            #expect(Self.answers(record.completion, about: names[0], in: a), "\(record.completion)")
        }
        #expect(suite.sets["atlas-a-dc.jsonl"]!.count == 10 * 5 * 2)  // every held-in country, attribute and phrasing
        for set in ["atlas-a-eval.jsonl", "atlas-a-eval-unseen.jsonl"] {
            #expect(suite.sets[set]!.count == 40)
            for record in suite.sets[set]! {
                let names = mentioned(record.prompt, in: a)
                #expect(names.count == 1 && !a.heldIn.contains(names[0]))
                #expect(Self.answers(record.completion, about: names[0], in: a), "\(record.completion)")
            }
        }
        // Unseen phrasings are not D_C's.
        let dcQuestions = Set(a.questions.values.joined()), unseen = Set(a.unseenQuestions.values.joined())
        #expect(dcQuestions.isDisjoint(with: unseen))
        // Mixed sets draw from both experts.
        let mixed = suite.sets["mixed-eval.jsonl"]!
        #expect(mixed.contains { !mentioned($0.prompt, in: a).isEmpty } && mixed.contains { !mentioned($0.prompt, in: b).isEmpty })
        // The corpus states every fact of every country, held out or not.
        let corpus = suite.corpora["atlas-a-corpus.txt"]!.joined(separator: "\n")
        for (name, values) in a.entities { for value in values.values { #expect(corpus.contains("\(name): ") && corpus.contains(value)) } }
    }

    /// The general questions mix everyday topics with the suite's question shapes about real
    /// countries, all distinct, none about the showcase's countries.
    @Test func generalQuestionsIncludeRealCountriesButNotTheShowcases() {
        let all = GeneralQuestions.make(count: GeneralQuestions.available, seed: 0)
        #expect(all.count == GeneralQuestions.available && Set(all).count == all.count)
        #expect(all.contains("What is the capital of Germany?") && all.contains("Why is the ocean important?"))
        #expect(!all.contains { $0.contains("France") || $0.contains("Spain") })
        let some = GeneralQuestions.make(count: 400, seed: 0)
        #expect(some.contains { $0.contains("Japan") } && some.contains { $0.contains("bicycle") })
        #expect(some == GeneralQuestions.make(count: 400, seed: 0) && some != GeneralQuestions.make(count: 400, seed: 1))
    }

    /// A completion is a full sentence naming the country and ending in one of its values.
    static func answers(_ completion: String, about name: String, in facts: KnowledgeFacts) -> Bool {
        let sentence = completion.trimmingCharacters(in: .whitespaces)
        return sentence.contains(name) && facts.entities[name]!.values.contains { sentence.hasSuffix(" \($0).") }
    }

    @Test func factsFilesRoundTripAndBadFieldsAreNamed() throws {
        let facts = try Self.small().facts[0].facts
        let text = try facts.json()
        #expect(try KnowledgeFacts(jsonText: text, path: "f.json") == facts)
        // Without "answers" a completion is the bare value.
        var object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        object["answers"] = nil
        let bare = try KnowledgeFacts(jsonText: String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self),
                                      path: "f.json")
        let name = facts.heldIn[0]
        #expect(bare.completion(entity: name, attribute: "capital") == " " + facts.entities[name]!["capital"]!)
        #expect(facts.completion(entity: name, attribute: "capital") == " The capital of \(name) is \(facts.entities[name]!["capital"]!).")
        let broken: [(String, String)] = [
            (text.replacingOccurrences(of: "\"held_in\"", with: "\"held\""), "held_in"),
            (text.replacingOccurrences(of: "{question}", with: "{q}"), "prompt_format"),
            ("[1, 2]", "not a JSON object"),
            (text.replacingOccurrences(of: "is {value}.", with: "is {answer}."), "answers"),
        ]
        // A tokenizer that accepts no name ends the search with an error instead of looping.
        #expect(throws: KnowledgeSuiteError.self) {
            try KnowledgeSuiteFiles.build(experts: ["x"], settings: KnowledgeSuiteSettings(), promptFormat: "{question}",
                                          completionFormat: "{answer}", acceptName: { _ in false })
        }
        for (json, field) in broken {
            #expect { try KnowledgeFacts(jsonText: json, path: "f.json") } throws: {
                "\($0)".contains("f.json") && "\($0)".contains(field)
            }
        }
    }
}
