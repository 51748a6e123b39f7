import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import CALMTokenizers
import Foundation

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
