import CALMCheckpoint
import CALMModels
import CALMTensor
import CALMTokenizers
import Foundation
import Testing

let quantTokenizer = CharTokenizer(corpus: "abcdefghij0123456789 =+-")

func temporaryPath(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-quant-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

@Suite("Quantized checkpoints")
struct QuantizedCheckpointTests {
    @Test(arguments: QuantizationFormat.allCases)
    func saveAndLoadAreBitExactAndStayQuantized(format: QuantizationFormat) throws {
        let source = try blockFriendlyLM(seed: 4)
        let model = try source.quantized(format).model
        let path = try temporaryPath("q.h5")
        let hash = try ModelCheckpoint.save(model: model, tokenizer: quantTokenizer, to: path)
        let loaded = try ModelCheckpoint.load(path)
        #expect(loaded.model.weights.map(\.name) == model.weights.map(\.name))
        for ((name, a), (_, b)) in zip(loaded.model.weights, model.weights) {
            switch (a, b) {
            case (.quantized(let x), .quantized(let y)):
                #expect(x.format == y.format && x.shape == y.shape && x.bytes == y.bytes, "\(name)")
            case (.dense(let x), .dense(let y)):
                #expect(x.shape == y.shape && x.data.map(\.bitPattern) == y.data.map(\.bitPattern), "\(name)")
            default:
                Issue.record("\(name) changed kind on load")
            }
        }
        // The stored hash is the one recomputed from the loaded blocks, and differs from the float32 model's.
        let recomputed = try ContentHash.of(configurationJSON: try loaded.model.config.jsonString(), tokenizer: loaded.tokenizer,
                                            weights: loaded.model.weights)
        #expect(loaded.storedContentHash == hash && recomputed == hash)
        #expect(hash != (try ContentHash.of(configurationJSON: try source.config.jsonString(), tokenizer: quantTokenizer,
                                             weights: source.weights)))
        let tokens = TokenBatch([3, 1, 4, 1, 5])
        #expect(withoutGradients { loaded.model.forward(tokens).logits!.data } == withoutGradients { model.forward(tokens).logits!.data })
    }

    /// The layout h5py sees: /tensors/<name> a plain uint8 (rows, bytes per row) or uint16 (rows, cols)
    /// dataset with attributes quantization and shape; float32 tensors unchanged.
    @Test(arguments: QuantizationFormat.allCases)
    func layoutIsPlainDatasetsWithAttributes(format: QuantizationFormat) throws {
        let model = try blockFriendlyLM(seed: 5).quantized(format).model
        let path = try temporaryPath("layout.h5")
        try ModelCheckpoint.save(model: model, tokenizer: quantTokenizer, to: path)
        let file = try HDF5File.open(path)
        let q = "tensors/layers.1.mlp.down_proj.weight"  // (64, 96)
        #expect(try file.stringAttribute("quantization", of: q) == format.rawValue)
        #expect(try file.intArrayAttribute("shape", of: q) == [64, 96])
        if format == .bf16 {
            #expect(try file.readUnsigned(q, elementSize: 2).shape == [64, 96])
        } else {
            #expect(try file.readUnsigned(q, elementSize: 1).shape == [64, 96 / 32 * format.bytesPerBlock])
        }
        #expect(throws: HDF5Error.self) { try file.readFloats(q) }
        #expect(try file.stringAttribute("quantization", of: "tensors/layers.1.mlp_norm.weight") == nil)
        #expect(try file.readFloats("tensors/embed.weight").shape == [29, 64])
    }

    @Test func damagedQuantizedTensorsAreRefusedNamingFileAndTensor() throws {
        let model = try blockFriendlyLM(seed: 6, layers: 1).quantized(.q8_0).model
        let name = "layers.0.attn.k_proj.weight"
        func failure(_ damage: @escaping (HDF5File) throws -> Void) throws -> String {
            let path = try temporaryPath("bad.h5")
            try ModelCheckpoint.save(model: model, tokenizer: quantTokenizer, to: path, extra: damage)
            do {
                _ = try ModelCheckpoint.load(path)
                return "loaded"
            } catch {
                #expect("\(error)".hasPrefix(path), "\(error)")
                return "\(error)"
            }
        }
        #expect(try failure { try $0.setAttribute("quantization", "q3_x", on: "tensors/\(name)") }.contains("\(name) has unknown quantization \"q3_x\""))
        #expect(try failure { try $0.setAttribute("shape", [64, 32], on: "tensors/\(name)") }.contains("\(name) has shape [64, 32], expected [32, 64]"))
        #expect(try failure { try $0.setAttribute("quantization", "q4_0", on: "tensors/\(name)") }.contains("\(name) holds [32, 68] elements, expected [32, 36]"))
        #expect(try failure { try $0.setAttribute("quantization", "q8_0", on: "tensors/layers.0.attn_norm.weight") }.contains("layers.0.attn_norm.weight"))

        // An infinite f16 scale.
        var bytes = model.blocks[0].key.weight.quantized!.bytes
        bytes[34 + 1] = 0x7C
        bytes[34] = 0
        let bad = try QuantizedMatrix(format: .q8_0, rows: 32, cols: 64, bytes: bytes)
        var source = ReusedWeights(model.weights) { n, w in n == name ? .quantized(bad) : w }
        let damaged = try TransformerLM(config: model.config, weights: &source)
        let path = try temporaryPath("inf.h5")
        try ModelCheckpoint.save(model: damaged, tokenizer: quantTokenizer, to: path)
        #expect(throws: CheckpointError.self) { try ModelCheckpoint.load(path) }
        #expect((try? ModelCheckpoint.load(path)) == nil)
        do { _ = try ModelCheckpoint.load(path) } catch {
            #expect("\(error)" == "\(path): tensor \(name) holds a non-finite scale at element 32")
        }
    }

    @Test func quantizedWeightsCannotBeLoadedForTraining() throws {
        let model = try blockFriendlyLM(seed: 8, layers: 1).quantized(.q4_0).model
        let path = try temporaryPath("train.h5")
        try ModelCheckpoint.save(model: model, tokenizer: quantTokenizer, to: path)
        let file = try openCheckpoint(path, kind: "model")
        var trainable = try CheckpointWeights(file: file, trainable: true)
        #expect(throws: CheckpointError.self) { try TransformerLM(config: model.config, weights: &trainable) }
        var frozen = try CheckpointWeights(file: file)
        #expect(throws: CheckpointError.self) {
            try frozen.weight("layers.0.attn.q_proj.weight", shape: [64, 64], initial: .zeros)
        }
    }
}
