import CALMTraining
import Foundation

/// `calm eval --perplexity FILE`: the text's tokens cut into consecutive windows, each after
/// `<bos>` (when the tokenizer has one), every token scored from the ones before it in its
/// window; the mean negative log-likelihood over all of them, and its exponential.
struct PerplexityEvaluation {
    let file: String
    let window: Int?
    let json: Bool

    func run(_ loaded: ModelSource.Loaded) throws {
        guard let bytes = FileManager.default.contents(atPath: file), let text = String(data: bytes, encoding: .utf8) else {
            throw DataError("\(file): cannot read the file as UTF-8 text")
        }
        let tokenizer = loaded.tokenizer
        let ids = tokenizer.encode(text)
        guard ids.count >= 2 else { throw DataError("\(file): fewer than two tokens of text") }
        let length = window ?? min(loaded.maxContext, 1024)
        guard length >= 2, length <= loaded.maxContext else {
            throw CLIError("--window must be in 2...\(loaded.maxContext) (the model's context)")
        }
        let prefix = tokenizer.bosID.map { [$0] } ?? []
        // Without <bos> a window's first token has nothing before it and is not scored.
        let step = length - prefix.count
        var totalLoss = 0.0, scored = 0
        for start in stride(from: 0, to: ids.count, by: step) {
            let window = prefix + ids[start..<min(ids.count, start + step)]
            let logits = loaded.logits(window)  // (T, V)
            let vocab = loaded.vocabularySize
            for t in 0..<(window.count - 1) {
                totalLoss += negativeLogLikelihood(logits[(t * vocab)..<((t + 1) * vocab)], target: window[t + 1])
                scored += 1
            }
        }
        let mean = totalLoss / Double(max(1, scored))
        if json {
            print("{\"mean_loss\": \(mean), \"perplexity\": \(exp(mean)), \"tokens\": \(scored), \"window\": \(length)}")
        } else {
            print(String(format: "mean loss %.4f, perplexity %.3f over %d tokens (windows of %d)", mean, exp(mean), scored, length))
        }
    }

    /// −log softmax(logits)[target], in double precision.
    private func negativeLogLikelihood(_ logits: ArraySlice<Float>, target: Int) -> Double {
        let maxLogit = Double(logits.max() ?? 0)
        let sum = logits.reduce(0.0) { $0 + exp(Double($1) - maxLogit) }
        return maxLogit + log(sum) - Double(logits[logits.startIndex + target])
    }
}
