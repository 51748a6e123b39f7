import CALMSupport
import CALMTraining
import Foundation

/// Sizes and seed of `calm data knowledge`.
public struct KnowledgeSuiteSettings: Sendable, Equatable {
    public var entitiesPerExpert = 1000
    /// Share of each expert's entities that D_C may mention.
    public var heldInFraction = 0.2
    /// Passes over every fact in the expert's corpus, each with a randomly chosen phrasing, plus
    /// one definition line per entity and pass.
    public var corpusPasses = 10
    /// Questions per evaluation set.
    public var evalExamples = 1000
    public var seed: UInt64 = 0
    public init() {}
}

public struct KnowledgeSuiteError: Error, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = message }
}

/// Everything `calm data knowledge` writes, by file name.
public struct KnowledgeSuiteFiles: Sendable {
    public var facts: [(name: String, facts: KnowledgeFacts)]
    /// Plain-text corpora (`E-corpus.txt`), one line per sentence.
    public var corpora: [String: [String]]
    /// JSONL sets: `E-recall.jsonl` (the expert's own statement format, every entity, to probe
    /// its recall before composing), `E-dc.jsonl` (chat questions about held-in entities),
    /// `E-eval.jsonl` and `E-eval-unseen.jsonl` (held-out entities, D_C's phrasings and unseen
    /// ones); with two or more experts, for the last two: `mixed-dc.jsonl`, `mixed-eval.jsonl`.
    public var sets: [String: [TrainingData.PromptCompletion]]

    /// Invents `settings.entitiesPerExpert` countries per expert (names unique across experts,
    /// accepted by `acceptName`, e.g. several tokens long for the anchor), their attributes,
    /// and the files above. Deterministic in the seed.
    public static func build(experts: [String], settings: KnowledgeSuiteSettings, promptFormat: String,
                             completionFormat: String, acceptName: (String) -> Bool = { _ in true }) throws -> KnowledgeSuiteFiles {
        var words = InventedWords(seed: settings.seed)
        var used = Set<String>()
        var facts: [(name: String, facts: KnowledgeFacts)] = []
        for _ in experts {
            var entities: [String: [String: String]] = [:]
            var order: [String] = []
            var attempts = 0
            while order.count < settings.entitiesPerExpert {
                attempts += 1
                guard attempts <= 100 * settings.entitiesPerExpert else {
                    throw KnowledgeSuiteError("found only \(order.count) of \(settings.entitiesPerExpert) new country names the anchor's "
                                              + "tokenizer accepts; ask for fewer countries or fewer tokens per name")
                }
                let name = words.name(syllables: 3...4)
                guard !used.contains(name), acceptName(name) else { continue }
                used.insert(name)
                order.append(name)
                entities[name] = Dictionary(uniqueKeysWithValues: KnowledgeAttribute.allCases.map { ($0.rawValue, $0.inventValue(&words)) })
            }
            words.shuffle(&order)
            let heldIn = Array(order.prefix(Int((Double(order.count) * settings.heldInFraction).rounded())))
            facts.append((name: "", facts: KnowledgeFacts(entities: entities, heldIn: heldIn.sorted(), promptFormat: promptFormat,
                                                          completionFormat: completionFormat)))
        }
        facts = zip(experts, facts).map { (name: $0, facts: $1.facts) }
        var corpora: [String: [String]] = [:]
        var sets: [String: [TrainingData.PromptCompletion]] = [:]
        for (name, f) in facts {
            corpora["\(name)-corpus.txt"] = corpus(f, passes: settings.corpusPasses, words: &words)
            sets["\(name)-recall.jsonl"] = recall(f)
            sets["\(name)-dc.jsonl"] = dc([f], words: &words)
            sets["\(name)-eval.jsonl"] = questions([f], count: settings.evalExamples, unseen: false, words: &words)
            sets["\(name)-eval-unseen.jsonl"] = questions([f], count: settings.evalExamples, unseen: true, words: &words)
        }
        if facts.count >= 2 {
            let pair = [facts[facts.count - 2].facts, facts[facts.count - 1].facts]
            sets["mixed-dc.jsonl"] = dc(pair, words: &words)
            sets["mixed-eval.jsonl"] = questions(pair, count: settings.evalExamples, unseen: false, words: &words)
        }
        return KnowledgeSuiteFiles(facts: facts, corpora: corpora, sets: sets)
    }

    private static func fill(_ template: String, entity: String, value: String = "") -> String {
        template.replacingOccurrences(of: "{entity}", with: entity).replacingOccurrences(of: "{value}", with: value)
    }

    /// Every fact in a random phrasing per pass, plus a definition line per entity (the facts
    /// readable where the name stands), shuffled.
    static func corpus(_ f: KnowledgeFacts, passes: Int, words: inout InventedWords) -> [String] {
        var lines: [String] = []
        for _ in 0..<passes {
            for name in f.entities.keys.sorted() {
                let values = f.entities[name]!
                lines.append(name + ": " + KnowledgeAttribute.allCases.map { "\($0.definitionLabel) \(values[$0.rawValue]!)" }
                    .joined(separator: ", ") + ".")
                for attribute in KnowledgeAttribute.allCases {
                    let phrasing = attribute.statements[words.integer(in: 0...(attribute.statements.count - 1))]
                    lines.append(fill(phrasing, entity: name, value: values[attribute.rawValue]!))
                }
            }
        }
        words.shuffle(&lines)
        return lines
    }

    /// The expert's own statement format for every fact (`The capital of X is` -> ` Tesk`).
    static func recall(_ f: KnowledgeFacts) -> [TrainingData.PromptCompletion] {
        f.entities.keys.sorted().flatMap { name in
            KnowledgeAttribute.allCases.map { a in
                TrainingData.PromptCompletion(prompt: fill(a.recallPrompt, entity: name), completion: " " + f.entities[name]![a.rawValue]!)
            }
        }
    }

    /// Every held-in entity, attribute and D_C phrasing, as chat prompts, shuffled.
    static func dc(_ experts: [KnowledgeFacts], words: inout InventedWords) -> [TrainingData.PromptCompletion] {
        var out: [TrainingData.PromptCompletion] = []
        for f in experts {
            for name in f.heldIn {
                for a in KnowledgeAttribute.allCases {
                    for q in a.questions {
                        out.append(.init(prompt: f.prompt(fill(q, entity: name)), completion: f.completion(entity: name, attribute: a.rawValue)))
                    }
                }
            }
        }
        words.shuffle(&out)
        return out
    }

    /// `count` questions about held-out entities (drawn evenly from `experts`), each a random
    /// attribute and phrasing (D_C's, or the unseen ones).
    static func questions(_ experts: [KnowledgeFacts], count: Int, unseen: Bool, words: inout InventedWords)
        -> [TrainingData.PromptCompletion] {
        (0..<count).map { i in
            let f = experts[i % experts.count]
            let heldOut = f.heldOut
            let name = heldOut[words.integer(in: 0...(heldOut.count - 1))]
            let a = KnowledgeAttribute.allCases[words.integer(in: 0...(KnowledgeAttribute.allCases.count - 1))]
            let templates = unseen ? a.unseenQuestions : a.questions
            let q = templates[words.integer(in: 0...(templates.count - 1))]
            return .init(prompt: f.prompt(fill(q, entity: name)), completion: f.completion(entity: name, attribute: a.rawValue))
        }
    }
}

extension KnowledgeSuiteFiles {
    /// Writes every corpus and JSONL set to `dataDirectory`, each file atomically (facts files
    /// are the caller's to write: it decides whether an existing one may be replaced).
    public func write(dataDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        for (name, records) in sets.sorted(by: { $0.key < $1.key }) {
            try writeJSONLines(records, to: "\(dataDirectory)/\(name)")
        }
        for (name, lines) in corpora.sorted(by: { $0.key < $1.key }) {
            try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: "\(dataDirectory)/\(name)")
        }
    }
}
