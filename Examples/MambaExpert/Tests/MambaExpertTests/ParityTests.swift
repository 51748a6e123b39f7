import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import Foundation
import MambaExpert
import Testing

@Suite("Mamba against transformers")
struct ParityTests {
    /// Logits and every block's output (and the embedding output) of the converted model match
    /// transformers' pure-PyTorch forward pass on a batch of two sequences.
    @Test(arguments: Fixtures.names)
    func matchesTransformers(_ name: String) throws {
        let model = try MambaHuggingFace.load(directory: Fixtures.mamba(name)).model
        let ids = try Fixtures.inputIDs(name)
        let tokens = TokenBatch(ids: ids.flatMap { $0 }, batch: ids.count, length: ids[0].count)
        let golden = try Fixtures.golden(name)
        let logits = model.logits(tokens)
        let expected = try golden.floats("logits")
        #expect(logits.shape == expected.shape)
        let logitError = maxDifference(logits.data, expected.data)
        #expect(logitError <= 1e-4, "\(name): logits differ by \(logitError)")
        let layers = Set(-1..<model.config.numLayers)
        let hidden = model.hiddenStates(tokens, layers: layers)
        var hiddenError: Float = 0
        for layer in layers.sorted() {
            let reference = try golden.floats("hidden.\(layer)")
            let error = maxDifference(hidden[layer]?.data ?? [], reference.data)
            #expect(error <= 1e-4, "\(name): block \(layer) differs by \(error)")
            hiddenError = max(hiddenError, error)
        }
        print("parity \(name): logits within \(logitError), block outputs within \(hiddenError) of transformers")
    }

    /// Feeding a sequence in pieces, carrying the recurrent state, gives the full forward pass's
    /// block outputs and logits.
    @Test(arguments: Fixtures.names)
    func incrementalEqualsFullForward(_ name: String) throws {
        let model = try MambaHuggingFace.load(directory: Fixtures.mamba(name)).model
        let sequence = try Fixtures.inputIDs(name)[1]
        let layers = Set(-1..<model.config.numLayers)
        let full = model.hiddenStates(TokenBatch(sequence), layers: layers)
        let fullLogits = model.logits(TokenBatch(sequence)).data
        let vocab = model.config.vocabSize
        let decoder = model.makeDecoder(capacity: sequence.count)
        let state = model.startDecoding(capacity: sequence.count)
        var start = 0
        for piece in [3, 1, 1, 4, 2] {
            let chunk = Array(sequence[start..<(start + piece)])
            let states = decoder.hiddenStates(TokenBatch(chunk), layers: layers)
            for layer in layers {
                let c = model.config.hiddenSize
                let expected = Array(full[layer]?.data[(start * c)..<((start + piece) * c)] ?? [])
                #expect(maxDifference(states[layer]?.data ?? [], expected) <= 1e-5, "\(name): block \(layer) at \(start)")
            }
            let logits = model.feed(chunk, state: state)
            let end = start + piece
            let expected = Array(fullLogits[((end - 1) * vocab)..<(end * vocab)])
            #expect(maxDifference(logits, expected) <= 1e-5, "\(name): logits after \(end) tokens")
            start = end
        }
        #expect(start == sequence.count)
        #expect(decoder.state.byteCount == model.decodingStateBytes(capacity: 1))
        #expect(model.decodingStateBytes(capacity: 10_000) == model.decodingStateBytes(capacity: 1))
    }

    /// A checkpoint round trip through the registry's `mamba` runtime keeps every weight, the
    /// content hash and the logits.
    @Test(arguments: Fixtures.names)
    func checkpointRoundTrip(_ name: String) throws {
        try MambaCheckpoint.registerRuntime()
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let converted = try MambaHuggingFace.convert(directory: Fixtures.mamba(name), to: "\(dir)/m.h5")
        let loaded = try ArchitectureRegistry.load("\(dir)/m.h5")
        #expect(loaded.architecture == "mamba")
        #expect(ArchitectureRegistry.runtime(serving: "mamba")?.name == "mamba")
        #expect(try ArchitectureRegistry.recomputedHash(loaded) == loaded.contentHash)
        let model = try #require(loaded.model as? MambaLM)
        #expect(model.config == converted.model.config)
        let tokens = TokenBatch(try Fixtures.inputIDs(name)[0])
        #expect(model.logits(tokens).data == converted.model.logits(tokens).data)
        #expect(model.weights.map(\.name) == converted.model.weights.map(\.name))
    }
}
