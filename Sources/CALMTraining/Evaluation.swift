import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Dispatch
import Foundation

/// Exact-match evaluation of greedy completions.
public enum ExactMatch {
    public struct Outcome: Sendable {
        public var answers: [String]
        public var correct: [Bool]
        public var accuracy: Double { correct.isEmpty ? 0 : Double(correct.filter { $0 }.count) / Double(correct.count) }
        public var correctCount: Int { correct.filter { $0 }.count }
    }

    /// Greedy-decodes every record's completion (at most `maxTokens`, never past the context)
    /// and compares it with the reference, surrounding whitespace ignored. Records are spread
    /// over `workers` threads; each decode has its own caches, and the models are only read.
    public static func evaluate<D: IncrementalDecoder>(
        _ decoder: D, tokenizer: any Tokenizer, records: [TrainingData.PromptCompletion],
        maxTokens: Int = 32, workers: Int = 1
    ) throws -> Outcome {
        let buffer = UnsafeMutableBufferPointer<String>.allocate(capacity: records.count)
        buffer.initialize(repeating: "")
        defer { buffer.deallocate() }
        // Each worker writes distinct slots and only reads the models (weights are never
        // mutated while decoding), so sharing them across threads is safe.
        let shared = Unchecked((decoder: decoder, answers: buffer))
        let failure = FailureCollector()
        let chunks = max(1, min(workers, records.count))
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let (decoder, answers) = shared.value
            var i = chunk
            while i < records.count {
                do {
                    let prompt = tokenizer.encodeWithBOS(records[i].prompt)
                    let budget = min(maxTokens, max(0, decoder.maxContext - prompt.count))
                    let ids = try withoutGradients {
                        try decoder.generate(prompt: prompt, maxTokens: budget, stopToken: tokenizer.eosID)
                    }
                    answers[i] = tokenizer.decode(ids)
                } catch {
                    failure.add(error)
                    return
                }
                i += chunks
            }
        }
        if let error = failure.first { throw error }
        let texts = Array(buffer)
        let correct = zip(texts, records).map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines) == $1.completion.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return Outcome(answers: texts, correct: correct)
    }

    private struct Unchecked<T>: @unchecked Sendable {
        let value: T
        init(_ value: T) { self.value = value }
    }
}
