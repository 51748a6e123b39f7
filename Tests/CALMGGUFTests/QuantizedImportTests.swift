import CALMCheckpoint
@testable import CALMGGUF
import CALMModels
import CALMTensor
import Foundation
import Testing

/// GGUF matrices of the types the kernels run (Q8_0, Q4_0, Q4_1, BF16) can stay in their stored
/// blocks: the model then holds exactly the dequantized path's values, and computes the same.
@Suite("GGUF import without dequantizing")
struct QuantizedImportTests {
    @Test(arguments: ["llama-q", "qwen2"])
    func keptBlocksGiveTheDequantizedModel(name: String) throws {
        let path = Fixtures.path("\(name).gguf")
        let widened = try GGUFConverter.load(path: path).model
        let kept = try GGUFConverter.load(path: path, keepQuantized: true).model
        let pairs = zip(kept.weights, widened.weights)
        var quantized = 0
        for ((name, keptWeight), (_, wideWeight)) in pairs {
            guard let q = keptWeight.quantized else { continue }
            quantized += 1
            // Same values: the stored blocks (rows reordered where llama.cpp permuted them),
            // dequantized, equal what the float32 import computed.
            #expect(q.dequantized().data == wideWeight.floatTensor().data, "\(name)")
        }
        let types = try GGUFFile.open(path).tensors.map(\.type)
        let keepable = types.filter { GGUFWeights.keptFormat($0) != nil }.count
        #expect(quantized > 0 && quantized <= keepable, "\(quantized) of \(keepable)")

        let ids = try ConversionTests.golden(name).input_ids
        let a = withoutGradients { kept.forward(TokenBatch(ids)).logits!.data }
        let b = withoutGradients { widened.forward(TokenBatch(ids)).logits!.data }
        let scale = b.map(abs).max() ?? 1
        let maxError = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        #expect(maxError <= 1e-4 * max(1, scale), "\(name): max |logit difference| \(maxError)")

        // Saved and loaded, the blocks stay blocks.
        let dir = try Fixtures.temporaryDirectory()
        try ModelCheckpoint.save(model: kept, tokenizer: try GGUFConverter.load(path: path).tokenizer, to: "\(dir)/q.h5")
        let reloaded = try ModelCheckpoint.load("\(dir)/q.h5").model
        #expect(reloaded.weights.filter { $0.1.quantized != nil }.count == quantized)
        #expect(withoutGradients { reloaded.forward(TokenBatch(ids)).logits!.data } == a)
    }
}
