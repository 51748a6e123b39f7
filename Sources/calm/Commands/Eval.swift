import ArgumentParser
import CALMModels
import CALMTraining
import Foundation

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exact-match accuracy of greedy completions on a JSONL prompt/completion file.")

    @OptionGroup var source: ModelSource
    @Option(help: "JSONL file of {\"prompt\": ..., \"completion\": ...} records.") var data: String
    @Option(help: "Longest completion to generate.") var maxTokens = 32
    @Option(help: "Evaluate only the first N records.") var limit: Int?
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let (decoder, tokenizer, _) = try source.load()
        guard let bytes = FileManager.default.contents(atPath: data), let text = String(data: bytes, encoding: .utf8) else {
            throw DataError("\(data): cannot read the file")
        }
        var records = try TrainingData.records(text, path: data)
        if let limit { records = Array(records.prefix(max(0, limit))) }
        guard !records.isEmpty else { throw DataError("\(data): no records") }
        var correct = 0
        for record in records {
            let prompt = tokenizer.promptIDs(record.prompt)
            // A completion cannot run past the context; longer answers are simply wrong.
            let budget = min(maxTokens, max(0, decoder.maxContext - prompt.count))
            let ids = try decoder.generate(prompt: prompt, maxTokens: budget, stopToken: tokenizer.eosID)
            let answer = tokenizer.decode(ids).trimmingCharacters(in: .whitespacesAndNewlines)
            if answer == record.completion.trimmingCharacters(in: .whitespacesAndNewlines) { correct += 1 }
        }
        let accuracy = Double(correct) / Double(records.count)
        if json {
            print("{\"accuracy\": \(accuracy), \"correct\": \(correct), \"count\": \(records.count)}")
        } else {
            print(String(format: "accuracy %.4f (%d/%d)", accuracy, correct, records.count))
        }
    }
}
