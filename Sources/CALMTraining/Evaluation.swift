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

    /// Scores every record in one forward pass instead of decoding: correct when each
    /// completion token, and after them end-of-sequence unless `prefix`, is the most likely
    /// next token. The verdict is greedy decoding's (greedy would emit exactly these tokens),
    /// except that greedy also accepts the same text spelled with other tokens. `prefix` suits
    /// models trained on running text, which continue past an answer instead of ending.
    /// `answers` holds the predicted completion tokens as text.
    public static func teacherForced(
        logits: (TokenBatch) -> Tensor, tokenizer: any Tokenizer, records: [TrainingData.PromptCompletion],
        prefix: Bool, batchSize: Int = 8
    ) -> Outcome {
        let end = prefix ? [] : (tokenizer.eosID.map { [$0] } ?? [])
        var answers: [String] = [], correct: [Bool] = []
        for first in stride(from: 0, to: records.count, by: batchSize) {
            let batch = records[first..<min(records.count, first + batchSize)]
            let encoded = batch.map { (prompt: tokenizer.encodeWithBOS($0.prompt), answer: tokenizer.encode($0.completion) + end) }
            let length = encoded.map { $0.prompt.count + $0.answer.count }.max()!
            let pad = tokenizer.padID ?? 0
            // Right padding: causal attention keeps it out of every real position.
            let ids = encoded.flatMap { $0.prompt + $0.answer + [Int](repeating: pad, count: length - $0.prompt.count - $0.answer.count) }
            let scores = logits(TokenBatch(ids: ids, batch: encoded.count, length: length))  // (B, T, V)
            let vocab = scores.lastDim
            scores.data.withUnsafeBufferPointer { x in
                for (b, e) in encoded.enumerated() {
                    let predicted = e.answer.indices.map { i in
                        Sampler.argmax(Array(UnsafeBufferPointer(start: x.baseAddress! + (b * length + e.prompt.count + i - 1) * vocab,
                                                                 count: vocab)))
                    }
                    correct.append(predicted == e.answer)
                    answers.append(tokenizer.decode(predicted.filter { !end.contains($0) }))
                }
            }
        }
        return Outcome(answers: answers, correct: correct)
    }

    private struct Unchecked<T>: @unchecked Sendable {
        let value: T
        init(_ value: T) { self.value = value }
    }
}
