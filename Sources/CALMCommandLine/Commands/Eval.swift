import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMSupport
import CALMTensor
import CALMTraining
import Foundation

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exact-match accuracy of greedy completions on a JSONL prompt/completion file, or perplexity on plain text.")

    @OptionGroup var source: ModelSource
    @Option(help: "JSONL file of {\"prompt\": ..., \"completion\": ...} records.") var data: String?
    @Option(help: "Plain-text file: mean next-token loss and perplexity instead of exact match.") var perplexity: String?
    @Option(parsing: .unconditional, help: "With --perplexity: tokens per window, <bos> included (default: the model's context, at most 1024).")
    var window: Int?
    @Option(parsing: .unconditional, help: "Longest completion to generate (never past the model's context).") var maxTokens = 32
    @Option(parsing: .unconditional, help: "Evaluate only the first N records.") var limit: Int?
    @Option(help: "With --composition: write per-token gate values (JSONL, one line per record) to this file.")
    var gates: String?
    @Option(parsing: .unconditional, help: "Evaluate records on this many threads (set --threads 1 for BLAS then).") var workers = 1
    @Flag(help: """
        Score each record in one forward pass instead of decoding: correct when every completion token, then \
        end-of-sequence, is the most likely next token (greedy decoding's verdict, unless the model spells the \
        answer with other tokens). Much faster for many records.
        """)
    var teacherForced = false
    @Flag(help: """
        With --teacher-forced: the completion need not be followed by end-of-sequence (for models trained on \
        running text, which continue past an answer, e.g. an expert's recall of its facts).
        """)
    var prefix = false
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try OptionCheck.atLeast(maxTokens, 1, "--max-tokens")
        try OptionCheck.atLeast(limit, 0, "--limit")
        try OptionCheck.atLeast(workers, 1, "--workers")
        try runtime.apply()
        if gates != nil && source.composition == nil { throw CLIError("--gates needs --composition") }
        if prefix && !teacherForced { throw CLIError("--prefix needs --teacher-forced") }
        if let gates { try OutputPath.validate(gates, option: "--gates") }
        guard (data == nil) != (perplexity == nil) else { throw CLIError("give exactly one of --data and --perplexity") }
        try OptionCheck.atLeast(window, 2, "--window")
        let loaded = try source.load()
        if let perplexity { return try PerplexityEvaluation(file: perplexity, window: window, json: json).run(loaded) }
        guard let data else { return }
        let tokenizer = loaded.tokenizer
        guard let bytes = FileManager.default.contents(atPath: data), let text = String(data: bytes, encoding: .utf8) else {
            throw DataError("\(data): cannot read the file")
        }
        var records = try TrainingData.records(text, path: data)
        if let limit { records = Array(records.prefix(max(0, limit))) }
        guard !records.isEmpty else { throw DataError("\(data): no records") }
        tokenizer.warnAboutUnknownPieces(in: records.map(\.prompt), what: "\(data) (prompts)")
        let outcome = teacherForced
            ? ExactMatch.teacherForced(logits: { loaded.logits($0) }, tokenizer: tokenizer, records: records, prefix: prefix)
            : try ExactMatch.evaluate(loaded.decoder, tokenizer: tokenizer, records: records, maxTokens: maxTokens, workers: workers)
        let correct = outcome.correctCount
        var gateLines: [String] = []
        var answerGates: [String: (sum: Double, count: Int)] = [:]
        if gates != nil, case .composition(let c) = loaded {
            for (i, record) in records.enumerated() {
                let prompt = tokenizer.promptIDs(record.prompt)
                let tokens = prompt + tokenizer.encode(outcome.answers[i])
                let (line, byName) = try gateLine(c, record: record, tokens: tokens, answer: outcome.answers[i], correct: outcome.correct[i])
                gateLines.append(line)
                // The gate at position t shapes the prediction of token t + 1: answer tokens
                // are predicted from the prompt's last position on.
                for (name, values) in byName {
                    let predicting = values[(prompt.count - 1)..<(tokens.count - 1)]
                    answerGates[name, default: (0, 0)].sum += predicting.reduce(0) { $0 + Double($1) }
                    answerGates[name, default: (0, 0)].count += predicting.count
                }
            }
        }
        let meanGates = answerGates.mapValues { $0.count > 0 ? $0.sum / Double($0.count) : 0 }
        if let gates {
            try writeAtomically(Data((gateLines.joined(separator: "\n") + "\n").utf8), to: gates)
        }
        let accuracy = Double(correct) / Double(records.count)
        let gateSummary = meanGates.keys.sorted()
        if json {
            let gatesJSON = gateSummary.map { "\"\($0)\": \(meanGates[$0]!)" }.joined(separator: ", ")
            print("{\"accuracy\": \(accuracy), \"correct\": \(correct), \"count\": \(records.count)"
                  + (gates == nil ? "" : ", \"mean_answer_gates\": {\(gatesJSON)}") + "}")
        } else {
            print(String(format: "accuracy %.4f (%d/%d)", accuracy, correct, records.count))
            if gates != nil {
                print("mean gate over the answer tokens: " + gateSummary.map { "\($0) " + String(format: "%.3f", meanGates[$0]!) }.joined(separator: ", "))
            }
        }
    }

    /// One JSON line: the tokens (as text) and, per augment and connection, the gate at each
    /// token; also those gates by name.
    private func gateLine(_ c: LoadedComposition, record: TrainingData.PromptCompletion, tokens: [Int],
                          answer: String, correct: Bool) throws -> (line: String, gates: [String: [Float]]) {
        let recorder = GateRecorder()
        _ = withoutGradients { c.model.forward(TokenBatch(tokens), gates: recorder) }
        var gatesByName: [String: [Float]] = [:]
        for (key, values) in recorder.values {
            let slot = c.model.augments[key.augment]
            gatesByName["\(slot.name)@\(slot.bridges[key.connection].connection)"] = values
        }
        struct Line: Encodable {
            var prompt: String, answer: String, correct: Bool
            var tokens: [String]
            var gates: [String: [Float]]
        }
        let line = Line(prompt: record.prompt, answer: answer, correct: correct,
                        tokens: tokens.map { c.tokenizer.displayName(of: $0) }, gates: gatesByName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (String(decoding: try encoder.encode(line), as: UTF8.self), gatesByName)
    }
}
