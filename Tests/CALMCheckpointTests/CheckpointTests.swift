import CALMCheckpoint
import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Foundation
import Testing

func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("HDF5 checkpoints")
struct CheckpointTests {
    let config = TransformerConfig.llama(vocabSize: 12, hiddenSize: 8, numLayers: 2, numHeads: 2, intermediateSize: 16, maxPositions: 16)
    let tokenizer = CharTokenizer(corpus: "abcdefgh")

    func saved() throws -> (dir: String, path: String, model: TransformerLM) {
        let dir = try temporaryDirectory()
        let model = try TransformerLM(config: config, seed: 4)
        let path = "\(dir)/model.h5"
        try ModelCheckpoint.save(model: model, tokenizer: tokenizer, to: path)
        return (dir, path, model)
    }

    @Test func saveLoadRoundTripIsExact() throws {
        let (_, path, model) = try saved()
        let loaded = try ModelCheckpoint.load(path)
        #expect(loaded.model.config == model.config)
        #expect(loaded.tokenizer.fingerprint == tokenizer.fingerprint)
        for (a, b) in zip(model.parameters, loaded.model.parameters) {
            #expect(a.name == b.name && a.tensor.shape == b.tensor.shape && a.tensor.data == b.tensor.data)
        }
        #expect(loaded.model.parameters.allSatisfy { !$0.tensor.requiresGrad })
    }

    @Test func savesLeaveNoTemporaryFilesAndFailedSavesKeepTheOldFile() throws {
        let (dir, path, model) = try saved()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try ModelCheckpoint.save(model: model, tokenizer: tokenizer, to: path) { _ in throw Boom() }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.h5"])
        // writeAtomically refuses a missing directory before HDF5 is involved.
        #expect { try ModelCheckpoint.save(model: model, tokenizer: tokenizer, to: "\(dir)/missing/model.h5") } throws: {
            "\($0)".hasPrefix("\(dir)/missing/model.h5: ")
        }
    }

    /// Re-saves the checkpoint with its tensors edited by `edit`, then expects `load` to fail
    /// with a message containing `expected`.
    func expectLoadFailure(_ expected: String, edit: (HDF5File, NamedParameters) throws -> Void) throws {
        let (dir, _, model) = try saved()
        let path = "\(dir)/edited.h5"
        let file = try HDF5File.create(path)
        try writeCheckpointHeader(file, kind: "model")
        try file.setAttribute("model_type", config.architecture)
        try file.setAttribute("config", try config.jsonString())
        try file.setAttribute("tokenizer", try tokenizer.serialized())
        try edit(file, model.parameters)
        try file.close()
        #expect { try ModelCheckpoint.load(path) } throws: { error in
            let message = "\(error)"
            return message.contains(expected) && message.contains(path)
        }
    }

    @Test func strictLoadingNamesTheTensor() throws {
        try expectLoadFailure("missing tensor layers.1.attn.v_proj.weight") { file, params in
            try writeTensors(params.filter { $0.name != "layers.1.attn.v_proj.weight" }, to: file)
        }
        try expectLoadFailure("unexpected tensor layers.0.attn.q_proj.bias") { file, params in
            try writeTensors(params + [("layers.0.attn.q_proj.bias", Tensor(zeros: [8]))], to: file)
        }
        try expectLoadFailure("tensor final_norm.weight has shape [9], expected [8]") { file, params in
            try writeTensors(params.map { $0.name == "final_norm.weight" ? ($0.name, Tensor(zeros: [9])) : $0 }, to: file)
        }
        try expectLoadFailure("non-finite") { file, params in
            try writeTensors(params.map { $0.name == "embed.weight" ? ($0.name, Tensor(filling: .nan, shape: [12, 8])) : $0 }, to: file)
        }
        try expectLoadFailure("unsupported format_version 7") { file, params in
            try file.setAttribute("format_version", 7)
            try writeTensors(params, to: file)
        }
    }

    @Test func damagedFilesGiveOneLineErrors() throws {
        let (dir, path, _) = try saved()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = "\(dir)/truncated.h5", garbage = "\(dir)/garbage.h5", corrupt = "\(dir)/corrupt.h5"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        try Data("definitely not hdf5".utf8).write(to: URL(fileURLWithPath: garbage))
        var flipped = bytes
        for i in stride(from: bytes.count / 3, to: bytes.count, by: 97) { flipped[i] ^= 0xFF }
        try flipped.write(to: URL(fileURLWithPath: corrupt))
        for bad in [truncated, garbage, corrupt, "\(dir)/absent.h5"] {
            #expect { try ModelCheckpoint.load(bad) } throws: { error in
                let message = "\(error)"
                return message.hasPrefix(bad) && !message.contains("\n")
            }
        }
    }

    @Test func attributesWrittenByOtherToolsAreRead() throws {
        // Fixed-length strings (as some tools write them) and variable-length ones both read back.
        let dir = try temporaryDirectory()
        let file = try HDF5File.create("\(dir)/a.h5")
        try file.setAttribute("text", "héllo ✓")
        try file.setAttribute("number", -42)
        try file.writeInt64s("ids", shape: [2, 2], data: [1, 2, 3, 4])
        try file.close()
        let read = try HDF5File.open("\(dir)/a.h5")
        #expect(try read.stringAttribute("text") == "héllo ✓")
        #expect(try read.intAttribute("number") == -42)
        #expect(try read.stringAttribute("absent") == nil)
        #expect(try read.readInt64s("ids").data == [1, 2, 3, 4])
        #expect(throws: HDF5Error.self) { try read.readFloats("ids") }
        let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/golden/llama.h5").standardized.path
        #expect(try HDF5File.open(golden).stringAttribute("model_type") == "llama")  // written by h5py
    }
}
