import ArgumentParser
import CALMCheckpoint
import CALMSuites
import CALMSupport
import CALMTokenizers
import CALMTraining
import Foundation

struct KnowledgeData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knowledge",
        abstract: "Generate the invented-knowledge suite: countries only an expert knows about, chat questions, evaluation sets.",
        discussion: """
            Each expert gets its own invented countries (names several tokens long for --anchor's tokenizer) with a \
            capital, founding year, language, leader and main export. Writes to --out, per expert E: E-corpus.txt \
            (encyclopedia sentences in several phrasings plus definition lines, for `calm pretrain`), E-recall.jsonl \
            (probe the expert's recall of every fact), E-dc.jsonl (D_C: chat questions about held-in countries only), \
            E-eval.jsonl and E-eval-unseen.jsonl (held-out countries, D_C's phrasings and unseen ones); with two or \
            more experts, for the last two also mixed-dc.jsonl and mixed-eval.jsonl; showcase-questions.txt (20 general questions to compare anchor and composition); with --general-answers, \
            general-chat.jsonl. The facts go to --map-dir/E.json \
            (default: --out), never replacing a different file without --force. Questions use --anchor's chat template \
            when it has one, else "Question: ... Answer:".
            """)

    @Option(help: "Output directory for the data files.") var out: String
    @Option(help: "Expert names, comma-separated; each gets its own countries.") var experts = "atlas"
    @Option(help: "Directory for the facts files (default: --out).") var mapDir: String?
    @Flag(help: "Replace facts files that exist with other facts.") var force = false
    @Option(help: "The anchor checkpoint (.h5): its chat template formats the questions, its tokenizer checks names.")
    var anchor: String?
    @Option(parsing: .unconditional, help: "With --anchor: fewest tokens per country name.") var minNameTokens = 3
    @Option(parsing: .unconditional, help: "Countries per expert.") var entities = 1000
    @Option(parsing: .unconditional, help: "Share of each expert's countries that D_C mentions.") var heldIn = 0.2
    @Option(parsing: .unconditional, help: "Passes over every fact in each expert's corpus.") var corpusPasses = 10
    @Option(parsing: .unconditional, help: "Questions per evaluation set.") var evalExamples = 1000
    @Option(parsing: .unconditional, help: """
        With --anchor: add N everyday questions with the anchor's own greedy answers to every D_C file, in the \
        chat format and again as plain text (so the bridges learn to leave the anchor alone where the expert \
        has nothing to add, in and out of a chat), also written to general-chat.jsonl.
        """)
    var generalAnswers = 0
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        let names = experts.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, Set(names).count == names.count, !names.contains("") else {
            throw CLIError("--experts must list distinct names")
        }
        try OptionCheck.atLeast(entities, 10, "--entities")
        try OptionCheck.atLeast(corpusPasses, 1, "--corpus-passes")
        try OptionCheck.atLeast(evalExamples, 0, "--eval-examples")
        try OptionCheck.within(generalAnswers, 0...GeneralQuestions.available, "--general-answers")
        if generalAnswers > 0 && anchor == nil { throw CLIError("--general-answers needs --anchor (the anchor answers the questions)") }
        guard heldIn > 0, heldIn < 1 else { throw CLIError("--held-in must be between 0 and 1 (exclusive), got \(heldIn)") }
        let mapDir = self.mapDir ?? out
        try runtime.apply()
        try OutputPath.validate(out, option: "--out", kind: .directory)
        try OutputPath.validate(mapDir, option: "--map-dir", kind: .directory)

        var promptFormat = "Question: {question}\nAnswer:", completionFormat = " {answer}"
        var acceptName: (String) -> Bool = { _ in true }
        if let anchor {
            let file = try openCheckpoint(anchor, kind: "model")
            defer { try? file.close() }
            let tokenizer = try ModelHeader.read(file).tokenizer
            if let template = tokenizer.chatTemplate {
                let rendered = try ChatTemplate(template).render(
                    [.init(role: "user", content: "{question}")], addGenerationPrompt: true,
                    bosToken: tokenizer.bosID.flatMap(tokenizer.tokenText) ?? "", eosToken: tokenizer.eosID.flatMap(tokenizer.tokenText) ?? "")
                promptFormat = rendered
                completionFormat = "{answer}"
            }
            let least = minNameTokens
            acceptName = { tokenizer.encode($0).count >= least }
        }
        var settings = KnowledgeSuiteSettings()
        settings.entitiesPerExpert = entities
        settings.heldInFraction = heldIn
        settings.corpusPasses = corpusPasses
        settings.evalExamples = evalExamples
        settings.seed = seed
        var suite = try KnowledgeSuiteFiles.build(experts: names, settings: settings, promptFormat: promptFormat,
                                              completionFormat: completionFormat, acceptName: acceptName)
        if let anchor, generalAnswers > 0 {
            let answers = try AnchorAnswers(anchor: anchor, format: suite.facts[0].facts)
            let general = try answers.answer(GeneralQuestions.make(count: generalAnswers, seed: seed))
            // The same answers as running text: the whole answer is a target, after <bos> only.
            let plain = general.map { TrainingData.PromptCompletion(prompt: "", completion: $0.completion) }
            for name in suite.sets.keys where name.hasSuffix("dc.jsonl") { suite.sets[name]! += general + plain }
            suite.sets["general-chat.jsonl"] = general
        }
        // Decide about every facts file before writing anything.
        let changed = try ProtectedFiles.changed(
            suite.facts.map { ("\(mapDir)/\($0.name).json", Data(try $0.facts.json().utf8)) }, force: force,
            what: "a facts file with other facts")
        try suite.write(dataDirectory: out)
        let showcase = Data((GeneralQuestions.showcase.joined(separator: "\n") + "\n").utf8)
        try writeAtomically(showcase, to: "\(out)/showcase-questions.txt")
        try FileManager.default.createDirectory(atPath: mapDir, withIntermediateDirectories: true)
        for (path, bytes) in changed { try writeAtomically(bytes, to: path) }
        print("wrote \(suite.sets.count + suite.corpora.count + 1) files to \(out) and \(changed.count) facts files to \(mapDir)"
              + (promptFormat.hasPrefix("Question:") ? "" : " (questions in the anchor's chat template)"))
    }
}
