import CALMCheckpoint
import CALMModels
import CALMTensor
import Foundation
import Testing

/// Compares against fixtures written by `scripts/make_golden.py` from PyTorch + transformers.
@Suite("Parity with Hugging Face transformers")
struct GoldenParityTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/golden").standardized.path

    @Test(arguments: ["llama", "qwen2", "gpt2"])
    func logitsLossAndGradientsMatch(architecture: String) throws {
        let path = "\(Self.fixtures)/\(architecture).h5"
        let checkpoint = try ModelCheckpoint.load(path)
        let model = checkpoint.model
        let file = try HDF5File.open(path)
        let (idShape, ids) = try file.readInt64s("golden/input_ids")
        let tokens = TokenBatch(ids: ids.map { Int($0) }, batch: idShape[0], length: idShape[1])

        let (_, expectedLogits) = try file.readFloats("golden/logits")
        let logits = withoutGradients { model.forward(tokens).logits! }
        let maxError = zip(logits.data, expectedLogits).map { abs($0 - $1) }.max() ?? .infinity
        #expect(logits.count == expectedLogits.count)
        #expect(maxError < 1e-4, "\(architecture): max |logit error| \(maxError)")

        model.setTrainable(true)
        let loss = model.loss(tokens)
        let (_, expectedLoss) = try file.readFloats("golden/loss")
        #expect(abs(loss.item - expectedLoss[0]) < 1e-5, "\(architecture): loss \(loss.item) vs \(expectedLoss[0])")
        loss.backward()

        let parameters = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.tensor) })
        let names = try file.children(of: "golden/grads")
        #expect(names.count >= 5)
        for name in names {
            let (shape, expected) = try file.readFloats("golden/grads/\(name)")
            let tensor = try #require(parameters[name], "no parameter \(name)")
            #expect(tensor.shape == shape)
            let grad = try #require(tensor.grad, "\(name) got no gradient")
            let scale = expected.map { abs($0) }.max() ?? 0
            let error = zip(grad, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(scale > 0)
            #expect(error <= 1e-3 * scale, "\(architecture) \(name): max error \(error), gradient scale \(scale)")
        }
    }
}
