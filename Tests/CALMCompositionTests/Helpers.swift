import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import CALMTokenizers
import Foundation
import Testing

func makeTemporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-comp-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

let sharedTokenizer = CharTokenizer(corpus: "abcdefghij0123456789 =+-")

func tinyLM(width: Int = 32, layers: Int = 4, heads: Int = 4, seed: UInt64 = 1, architecture: String = "llama") throws -> TransformerLM {
    let vocab = sharedTokenizer.vocabularySize
    let config: TransformerConfig = architecture == "gpt2"
        ? .gpt2(vocabSize: vocab, hiddenSize: width, numLayers: layers, numHeads: heads, maxPositions: 48)
        : .llama(vocabSize: vocab, hiddenSize: width, numLayers: layers, numHeads: heads, intermediateSize: 2 * width, maxPositions: 48)
    return try TransformerLM(config: config, seed: seed)
}

/// Gives every bridge random (non-zero) output weights, so bridges visibly change the anchor.
func randomizeOutputs(_ model: ComposedModel, seed: UInt64 = 5) {
    var g = SeededGenerator(seed: seed)
    for (name, tensor) in model.parameters where name.hasSuffix("o_proj.weight") || name.hasSuffix("gate.weight") {
        for i in 0..<tensor.count { tensor.data[i] = g.nextNormal() * 0.3 }
    }
}

/// Checks every bridge parameter's gradient (three random elements each) against central
/// finite differences of the composed loss on a fixed two-sequence batch.
func expectBridgeGradientsMatchFiniteDifferences(_ model: ComposedModel) {
    let tokens = TokenBatch(ids: [1, 5, 6, 7, 8, 9, 1, 10, 12, 14, 4, 0], batch: 2, length: 6)
    let mask = [false, false, true, true, true, true, false, true, true, true, true, false]
    for (_, p) in model.parameters { p.zeroGrad() }
    model.loss(tokens, lossMask: mask).backward()
    var g = SeededGenerator(seed: 8)
    for (name, p) in model.parameters {
        for _ in 0..<3 {
            let i = Int(g.next() % UInt64(p.count))
            // Small steps: tiny random augments' states have small norms, where the bridge's
            // RMS norm is strongly curved.
            let saved = p.data[i], eps: Float = 2e-3
            p.data[i] = saved + eps
            let plus = withoutGradients { model.loss(tokens, lossMask: mask).item }
            p.data[i] = saved - eps
            let minus = withoutGradients { model.loss(tokens, lossMask: mask).item }
            p.data[i] = saved
            let numeric = (plus - minus) / (2 * eps), analytic = p.grad?[i] ?? 0
            #expect(abs(numeric - analytic) <= 3e-2 * max(1, abs(numeric)), "\(name)[\(i)]: \(analytic) vs \(numeric)")
        }
    }
}

/// Decoding `model` (prompts fed alone, then batched steps of two sequences, then one sequence
/// fed in two chunks) gives the logits of its full forward at every position.
func expectDecodingEqualsTheFullForward(_ model: ComposedModel) {
    let sequences = [[1, 5, 6, 7, 20, 9, 10, 11], [2, 8, 8, 13, 1, 0, 17, 5]]
    let v = model.vocabularySize
    let states = sequences.map { _ in model.startDecoding(capacity: 8) }
    var worst: Float = 0
    for (s, state) in zip(sequences, states) { _ = model.feed(Array(s[0..<3]), state: state) }
    for t in 3..<8 {
        let batched = BatchedDecoding.step(anchor: model.anchor, tokens: sequences.map { $0[t] },
                                           sequences: states.map { .composed(model, $0, gates: nil) })
        for (b, s) in sequences.enumerated() {
            let full = withoutGradients { model.forward(TokenBatch(Array(s[0...t]))) }
            worst = max(worst, maxAbsDifference(batched[b], full.data[(t * v)..<((t + 1) * v)]))
        }
    }
    #expect(worst < 1e-4, "largest logit difference \(worst)")
    let chunked = model.startDecoding(capacity: 8)
    _ = model.feed(Array(sequences[1][0..<5]), state: chunked)
    let fed = model.feed(Array(sequences[1][5...]), state: chunked)
    let full = withoutGradients { model.forward(TokenBatch(sequences[1])) }
    #expect(maxAbsDifference(fed, full.data[(7 * v)..<(8 * v)]) < 1e-4)
}
