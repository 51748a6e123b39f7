import CALMComposition
import CALMModels
import CALMTensor
import CALMTraining
import Testing

@Suite("Quantized frozen models in compositions")
struct QuantizedCompositionTests {
    static let pairs: [(String, String)] = Array(zip("abcdefghij".map(String.init), ["3", "7", "1", "9", "0", "4", "8", "2", "6", "5"]))

    /// Bridges trained against quantized anchor and augment equal bridges trained against their
    /// dequantized float32 copies: gradients flow through the quantized anchor blocks above
    /// the lowest bridge (input gradients only) exactly as through float32 ones.
    @Test(arguments: [QuantizationFormat.q8_0, .q4_0, .bf16])
    func bridgesTrainTheSameAsWithFloat32Copies(format: QuantizationFormat) throws {
        let anchor = try blockFriendlyLM(seed: 21, vocab: quantTokenizer.vocabularySize).quantized(format).model
        let augment = try blockFriendlyLM(seed: 22, vocab: quantTokenizer.vocabularySize, layers: 2).quantized(format).model
        let data = TrainingData(examples: Self.pairs.map {
            TrainingData.example(prompt: "\($0.0) +", completion: " \($0.1)", tokenizer: quantTokenizer)
        })
        func train(_ anchor: TransformerLM, _ augment: TransformerLM) throws -> (NamedParameters, [Float]) {
            let composed = try ComposedModel(anchor: anchor, augments: [("expert", augment, [Connection(anchorLayer: 0, augmentLayer: 1)])],
                                             seed: 1)
            var o = TrainingOptions()
            o.steps = 4
            o.batchSize = 5
            o.learningRate = 1e-2
            o.warmupSteps = 1
            let trainer = try Trainer(parameters: composed.parameters, train: data, eval: nil, padID: 0, options: o) {
                composed.loss($0, lossMask: $1)
            }
            try trainer.run()
            let logits = withoutGradients { composed.forward(TokenBatch([1, 2, 3, 4, 5])).data }
            return (composed.parameters, logits)
        }
        let (quantized, quantizedLogits) = try train(anchor, augment)
        let (reference, referenceLogits) = try train(try anchor.dequantized(), try augment.dequantized())
        #expect(quantized.map(\.name) == reference.map(\.name))
        var moved = false
        for ((name, a), (_, b)) in zip(quantized, reference) {
            #expect(relativeError(a.data, b.data) < 1e-4, "\(name)")
            if name.hasSuffix("o_proj.weight") { moved = moved || a.data.contains { $0 != 0 } }
        }
        #expect(moved)  // the bridges did train (W_o starts at zero)
        #expect(relativeError(quantizedLogits, referenceLogits) < 1e-4)
    }
}
