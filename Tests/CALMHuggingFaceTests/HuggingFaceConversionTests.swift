import CALMCheckpoint
import CALMHuggingFace
import CALMModels
import CALMTensor
import Foundation
import Testing

/// Conversion against the tiny Hugging Face models and golden logits written by
/// scripts/make_hf_fixtures.py (transformers 5.24, float32, eager attention).
@Suite("Hugging Face conversion")
struct HuggingFaceConversionTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/hf").standardized.path
    static let architectures = ["llama", "llama2", "tinyllama", "mistral", "qwen2", "gemma", "gpt2"]

    struct Golden: Decodable {
        let text: String
        let input_ids: [Int]
    }

    static func golden(_ name: String) throws -> (Golden, logits: [Float], shape: [Int]) {
        let dir = "\(fixtures)/\(name)"
        let g = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/golden.json")))
        let (shape, logits) = try SafetensorsFile.open("\(dir)/golden.safetensors").floats("logits")
        return (g, logits, shape)
    }

    @Test(arguments: architectures)
    func convertedModelMatchesTransformersLogits(name: String) throws {
        let dir = try temporaryDirectory()
        let output = "\(dir)/\(name).h5"
        try HuggingFaceConverter.convert(directory: "\(Self.fixtures)/\(name)", to: output)
        let checkpoint = try ModelCheckpoint.load(output)
        let (golden, expected, shape) = try Self.golden(name)
        let ids = (checkpoint.tokenizer.bosID.map { [$0] } ?? []) + checkpoint.tokenizer.encode(golden.text)
        #expect(ids == golden.input_ids)
        let logits = withoutGradients { checkpoint.model.forward(TokenBatch(golden.input_ids)).logits! }
        #expect(logits.shape == [1] + shape)
        let maxError = zip(logits.data, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(maxError < 1e-4, "\(name): max |logit error| \(maxError)")
    }

    @Test func slidingWindowCachedDecodingEqualsFullRecompute() throws {
        // The Mistral fixture has a 5-token window, shorter than the golden text.
        let converted = try HuggingFaceConverter.load(directory: "\(Self.fixtures)/mistral")
        let model = converted.model
        #expect(model.config.slidingWindow == 5)
        let (golden, _, _) = try Self.golden("mistral")
        let ids = golden.input_ids
        #expect(ids.count > 10)
        let full = withoutGradients { model.forward(TokenBatch(ids)).logits! }
        let cache = model.makeCache(capacity: ids.count)
        var maxError: Float = 0
        for (t, id) in ids.enumerated() {
            let step = withoutGradients { model.forward(TokenBatch([id]), cache: cache).logits! }
            let v = model.config.vocabSize
            for j in 0..<v { maxError = max(maxError, abs(step.data[j] - full.data[t * v + j])) }
        }
        #expect(maxError < 1e-5)
    }

    @Test func exportWritesTheSameTensorsBack() throws {
        for name in ["llama", "llama2", "gemma", "gpt2", "qwen2", "mistral"] {
            let dir = try temporaryDirectory()
            try HuggingFaceConverter.convert(directory: "\(Self.fixtures)/\(name)", to: "\(dir)/m.h5")
            _ = try HuggingFaceExporter.export(try ModelCheckpoint.load("\(dir)/m.h5"), to: "\(dir)/out")
            let exported = try WeightsOfDirectory("\(dir)/out")
            let original = try WeightsOfDirectory("\(Self.fixtures)/\(name)")
            // GPT-2's saved causal-mask buffers and tied heads are not parameters.
            #expect(exported.tensors.keys.sorted() == original.tensors.keys.sorted(), "\(name)")
            for (key, value) in original.tensors { #expect(exported.tensors[key]?.data == value.data, "\(name) \(key)") }
            let tokenizerBack = try String(contentsOfFile: "\(dir)/out/tokenizer.json", encoding: .utf8)
            #expect(tokenizerBack == (try String(contentsOfFile: "\(Self.fixtures)/\(name)/tokenizer.json", encoding: .utf8)))
            // And the exported directory converts again to the same model.
            let again = try HuggingFaceConverter.load(directory: "\(dir)/out")
            let first = try ModelCheckpoint.load("\(dir)/m.h5")
            #expect(again.model.config == first.model.config)
            for (a, b) in zip(again.model.parameters, first.model.parameters) { #expect(a.tensor.data == b.tensor.data) }
        }
    }

    /// Every tensor of a directory's safetensors files, by name.
    struct WeightsOfDirectory {
        var tensors: [String: (shape: [Int], data: [Float])] = [:]
        init(_ dir: String) throws {
            for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".safetensors") && !file.hasPrefix("golden") {
                let st = try SafetensorsFile.open("\(dir)/\(file)")
                for name in st.names { tensors[name] = try st.floats(name) }
            }
        }
    }

    @Test func pickleWeightsAreRefused() throws {
        let dir = try temporaryDirectory()
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/llama/config.json", toPath: "\(dir)/config.json")
        try Data("not really a pickle".utf8).write(to: URL(fileURLWithPath: "\(dir)/pytorch_model.bin"))
        #expect { try HuggingFaceConverter.load(directory: dir) } throws: { error in
            "\(error)".contains("pytorch_model.bin") && "\(error)".contains("arbitrary code")
        }
    }

    @Test func unsupportedArchitecturesAndConfigValuesAreNamed() throws {
        let dir = try temporaryDirectory()
        for file in ["model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: "\(Self.fixtures)/llama/\(file)", toPath: "\(dir)/\(file)")
        }
        let config = try String(contentsOfFile: "\(Self.fixtures)/llama/config.json", encoding: .utf8)
        func attempt(_ replace: String, _ with: String) throws -> String {
            let changed = config.replacingOccurrences(of: replace, with: with)
            #expect(changed != config, "fixture lacks \(replace)")
            try changed.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
            do { _ = try HuggingFaceConverter.load(directory: dir); return "converted" } catch { return "\(error)" }
        }
        let arch = try attempt("\"model_type\": \"llama\"", "\"model_type\": \"bert\"")
        #expect(arch.contains("bert") && arch.contains("supported: gemma, gpt2, llama, mistral, qwen2"))
        let act = try attempt("\"hidden_act\": \"silu\"", "\"hidden_act\": \"mish\"")
        #expect(act.contains("hidden_act") && act.contains("mish") && act.contains("supported"))
        let rope = try attempt("\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\"")
        #expect(rope.contains("yarn") && rope.contains("supported: default, linear, llama3"))
        let width = try attempt("\"hidden_size\": 32", "\"hidden_size\": 48")
        #expect(width.contains("model.embed_tokens.weight") && width.contains("shape"))
        let layers = try attempt("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1")
        #expect(layers.contains("unexpected tensor model.layers.1."))
    }
}
