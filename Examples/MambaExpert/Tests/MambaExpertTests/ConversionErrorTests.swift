import CALMHuggingFace
import Foundation
import MambaExpert
import Testing

/// Bad Hugging Face directories give one error naming the file and the field or tensor.
@Suite("Mamba conversion errors")
struct ConversionErrorTests {
    /// A copy of the tied fixture with `config.json` fields replaced and tensors changed.
    func brokenCopy(config edits: [String: Any] = [:], tensors: ((inout [(name: String, shape: [Int], data: [Float])]) -> Void)? = nil)
        throws -> String {
        let dir = try makeTemporaryDirectory()
        let source = Fixtures.mamba("mamba-tied")
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: "\(source)/\(file)", toPath: "\(dir)/\(file)")
        }
        if !edits.isEmpty {
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/config.json"))) as? [String: Any] ?? [:]
            for (key, value) in edits { config[key] = value }
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: "\(dir)/config.json"))
        }
        if let tensors {
            let file = try SafetensorsFile.open("\(dir)/model.safetensors")
            var all = try file.names.map { name in let t = try file.floats(name); return (name: name, shape: t.shape, data: t.data) }
            tensors(&all)
            try FileManager.default.removeItem(atPath: "\(dir)/model.safetensors")
            try SafetensorsWriter.write(all, to: "\(dir)/model.safetensors")
        }
        return dir
    }

    func error(converting dir: String) -> String {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            _ = try MambaHuggingFace.load(directory: dir)
            return "no error"
        } catch { return "\(error)" }
    }

    @Test func unsupportedActivation() throws {
        let message = error(converting: try brokenCopy(config: ["hidden_act": "gelu"]))
        #expect(message.contains("config.json: hidden_act \"gelu\" is not supported"), "\(message)")
    }

    @Test func inconsistentIntermediateSize() throws {
        let message = error(converting: try brokenCopy(config: ["intermediate_size": 65]))
        #expect(message.contains("config.json: intermediate_size"), "\(message)")
    }

    @Test func wrongModelType() throws {
        let message = error(converting: try brokenCopy(config: ["model_type": "llama"]))
        #expect(message.contains("model_type is \"llama\", expected \"mamba\""), "\(message)")
    }

    @Test func missingTensor() throws {
        let message = error(converting: try brokenCopy { $0.removeAll { $0.name == "backbone.layers.1.mixer.A_log" } })
        #expect(message.contains("model.safetensors: missing tensor backbone.layers.1.mixer.A_log"), "\(message)")
    }

    @Test func wrongShape() throws {
        let message = error(converting: try brokenCopy { tensors in
            guard let i = tensors.firstIndex(where: { $0.name == "backbone.layers.0.mixer.D" }) else { return }
            tensors[i] = (tensors[i].name, [tensors[i].shape[0] - 1], Array(tensors[i].data.dropLast()))
        })
        #expect(message.contains("tensor backbone.layers.0.mixer.D has shape [63], expected [64]"), "\(message)")
    }

    @Test func unexpectedTensor() throws {
        let message = error(converting: try brokenCopy { $0.append((name: "backbone.extra", shape: [2], data: [1, 2])) })
        #expect(message.contains("unexpected tensor backbone.extra"), "\(message)")
    }

    @Test func untiedHeadThatDiffersFromTheEmbedding() throws {
        let message = error(converting: try brokenCopy { tensors in
            guard let embedding = tensors.first(where: { $0.name == "backbone.embeddings.weight" }) else { return }
            tensors.append((name: "lm_head.weight", shape: embedding.shape, data: embedding.data.map { $0 + 1 }))
        })
        #expect(message.contains("unexpected tensor lm_head.weight"), "\(message)")
    }
}
