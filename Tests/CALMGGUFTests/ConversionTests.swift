import CALMCheckpoint
@testable import CALMGGUF
import CALMHuggingFace
import CALMModels
import CALMTensor
import CALMTokenizers
import Foundation
import Testing

/// Tiny GGUF models against reference logits and token ids (scripts/make_gguf_fixtures.py):
/// transformers' own GGUF loading for llama, qwen2 and gpt2, the dequantized Hugging Face
/// model for mistral, gemma and llama3 rope scaling, which transformers cannot load from GGUF.
@Suite("GGUF conversion")
struct ConversionTests {
    static let models = ["llama-q", "qwen2", "gpt2", "llama-spm", "mistral", "gemma", "llama3"]

    struct Golden: Decodable {
        struct Sample: Decodable {
            let text: String
            let ids: [Int]
            let ids_with_specials: [Int]
        }
        let reference: String
        let input_ids: [Int]
        let text: String
        let chat_template: String?
        let strings: [Sample]?
    }

    static func golden(_ name: String) throws -> Golden {
        let all = try JSONDecoder().decode([String: Golden].self, from: Fixtures.bytes("golden.json"))
        return try #require(all[name])
    }

    @Test(arguments: models)
    func convertedCheckpointMatchesTheReferenceLogits(name: String) throws {
        let dir = try Fixtures.temporaryDirectory()
        try GGUFConverter.convert(path: Fixtures.path("\(name).gguf"), to: "\(dir)/\(name).h5")
        let checkpoint = try ModelCheckpoint.load("\(dir)/\(name).h5")
        let golden = try Self.golden(name)
        let (shape, expected) = try SafetensorsFile.open(Fixtures.path("golden.safetensors")).floats(name)
        let logits = withoutGradients { checkpoint.model.forward(TokenBatch(golden.input_ids)).logits! }
        #expect(logits.shape == [1] + shape)
        let maxError = zip(logits.data, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(maxError < 1e-4, "\(name) (\(golden.reference)): max |logit error| \(maxError)")
        print("GGUF parity \(name) against \(golden.reference): max |logit error| \(maxError)")
    }

    @Test(arguments: models)
    func tokenizerMatchesTransformersGGUFTokenizer(name: String) throws {
        let converted = try GGUFConverter.load(path: Fixtures.path("\(name).gguf"))
        let golden = try Self.golden(name)
        guard let samples = golden.strings else { return }  // transformers builds no gemma tokenizer from GGUF
        for s in samples {
            #expect(converted.tokenizer.encode(s.text) == s.ids, "\(name): \(s.text)")
            #expect(converted.tokenizer.encodeWithBOS(s.text) == s.ids_with_specials, "\(name) with specials: \(s.text)")
        }
        // The saved tokenizer rebuilds identically.
        let again = try TokenizerRegistry.load(json: try converted.tokenizer.serialized())
        #expect(again.fingerprint == converted.tokenizer.fingerprint)
    }

    @Test func configurationsFollowTheMetadata() throws {
        let llama = try GGUFConverter.load(path: Fixtures.path("llama-q.gguf"))
        let c = llama.model.config
        #expect(c.architecture == "llama" && c.numLayers == 2 && c.hiddenSize == 32 && c.numHeads == 4 && c.numKVHeads == 2)
        #expect(c.intermediateSize == 256 && !c.tiedEmbeddings && c.vocabSize == 422 && c.ropeScaling == nil)
        #expect(llama.tokenizer.specialTokens.chatTemplate == (try Self.golden("llama-q").chat_template))
        #expect(llama.tokenizer.bosID == 0 && llama.tokenizer.eosID == 1)
        #expect(llama.typeCounts[.q2_K] == 1 && llama.typeCounts[.q3_K] == 1)

        let gpt2 = try GGUFConverter.load(path: Fixtures.path("gpt2.gguf")).model.config
        #expect(gpt2.tiedEmbeddings && gpt2.positions == .learned && gpt2.maxPositions == 1024)  // output.weight repeats token_embd
        let qwen2 = try GGUFConverter.load(path: Fixtures.path("qwen2.gguf")).model.config
        #expect(qwen2.qkvBias && qwen2.tiedEmbeddings && qwen2.ropeTheta == 1_000_000)
        let mistral = try GGUFConverter.load(path: Fixtures.path("mistral.gguf")).model.config
        #expect(mistral.architecture == "mistral" && mistral.slidingWindow == 5)
        let gemma = try GGUFConverter.load(path: Fixtures.path("gemma.gguf"))
        #expect(gemma.model.config.headDim == 16 && gemma.model.config.normWeightOffset == 1 && gemma.model.config.activation == .geluTanh)
        #expect(gemma.tokenizer.bosID == nil || gemma.tokenizer.bosID == 2)
        let llama3 = try GGUFConverter.load(path: Fixtures.path("llama3.gguf")).model.config
        #expect(llama3.ropeScaling == .init(type: .llama3, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16))
    }

    /// `bytes` with the first occurrence of `old` replaced by `new` (same length).
    static func patched(_ name: String, _ old: [UInt8], _ new: [UInt8]) throws -> Data {
        var bytes = try Fixtures.bytes(name)
        let range = try #require(bytes.firstRange(of: Data(old)))
        bytes.replaceSubrange(range, with: new)
        return bytes
    }

    static func lengthPrefixed(_ s: String) -> [UInt8] { GGUFBuilder.string(s) }

    @Test(arguments: [
        ("llama-q.gguf", lengthPrefixed("llama"), lengthPrefixed("bloom"), "general.architecture \"bloom\" is not supported (supported: gemma, gpt2, llama, mistral, qwen2)"),
        ("llama-q.gguf", Array("llama.rope.freq_base".utf8), Array("llama.rope.freq_bass".utf8), "llama.rope.freq_bass = 10000.0 is not a hyper-parameter this converter knows"),
        ("llama-q.gguf", lengthPrefixed("llama-bpe"), lengthPrefixed("tekken-xx"), "tokenizer.ggml.pre = \"tekken-xx\" is not a supported pre-tokenizer"),
        ("gpt2.gguf", Array("ggml.model".utf8) + GGUFBuilder.u32(8) + lengthPrefixed("gpt2"),
         Array("ggml.model".utf8) + GGUFBuilder.u32(8) + lengthPrefixed("bert"), "tokenizer.ggml.model = \"bert\" is not supported"),
        ("llama-q.gguf", Array("blk.1.ffn_up.weight".utf8), Array("blk.9.ffn_up.weight".utf8), "lacks tensor blk.1.ffn_up.weight (needed for layers.1.mlp.up_proj.weight)"),
        ("qwen2.gguf", Array("blk.0.attn_q.bias".utf8), Array("blk.0.attn_x.bias".utf8), "lacks blk.0.attn_q.bias"),
    ])
    func unsupportedFilesAreRefusedByName(file: String, old: [UInt8], new: [UInt8], expected: String) throws {
        let bytes = try Self.patched(file, old, new)
        #expect { try GGUFConverter.load(file: GGUFFile(path: file, bytes: bytes)) } throws: { error in
            let ok = "\(error)".hasPrefix("\(file): ") && "\(error)".contains(expected) && !"\(error)".contains("\n")
            if !ok { print("got: \(error)") }
            return ok
        }
    }

    @Test func ropeScalingMetadataIsReadOrRefused() throws {
        func scaling(_ values: [String: GGUFValue]) throws -> TransformerConfig.RopeScaling? {
            try GGUFRopeScaling.fromMetadata(GGUFMetadata(path: "x.gguf", values: values), architecture: "llama")
        }
        #expect(try scaling([:]) == nil)
        #expect(try scaling(["llama.rope.scaling.type": .string("none")]) == nil)
        #expect(try scaling(["llama.rope.scaling.type": .string("linear"), "llama.rope.scaling.factor": .float32(4)])
                == .init(type: .linear, factor: 4))
        #expect(try scaling(["llama.rope.scale_linear": .float32(2)]) == .init(type: .linear, factor: 2))
        #expect { try scaling(["llama.rope.scaling.type": .string("yarn")]) } throws: {
            "\($0)" == "x.gguf: llama.rope.scaling.type = \"yarn\" is not supported (supported: none, linear, and llama3 through rope_freqs.weight)"
        }
        #expect { try scaling(["llama.rope.scaling.type": .string("linear")]) } throws: { "\($0)" == "x.gguf: llama.rope.scaling.factor is missing" }
    }

    /// A converted GGUF model exports as a Hugging Face directory that converts back to the same model.
    @Test func convertedModelsExportToHuggingFaceDirectories() throws {
        for name in ["llama-q", "gemma", "gpt2"] {
            let dir = try Fixtures.temporaryDirectory()
            try GGUFConverter.convert(path: Fixtures.path("\(name).gguf"), to: "\(dir)/m.h5")
            let checkpoint = try ModelCheckpoint.load("\(dir)/m.h5")
            _ = try HuggingFaceExporter.export(checkpoint, to: "\(dir)/hf")
            let again = try HuggingFaceConverter.load(directory: "\(dir)/hf")
            #expect(again.model.config == checkpoint.model.config, "\(name)")
            for (a, b) in zip(again.model.parameters, checkpoint.model.parameters) { #expect(a.tensor.data == b.tensor.data, "\(name) \(a.name)") }
            #expect(again.tokenizer.fingerprint == checkpoint.tokenizer.fingerprint, "\(name)")
        }
    }

    @Test func llama3DivisorsAreFittedOrRefused() throws {
        // Llama 3.2's parameters, as the converter writes them.
        let divisors = GGUFRopeScaling.llama3Divisors(headDim: 128, theta: 500_000, factor: 32, low: 1, high: 4, original: 8192).map { Float($0) }
        func fit(_ d: [Float]) throws -> TransformerConfig.RopeScaling? {
            try GGUFRopeScaling.llama3(fitting: d, headDim: 128, theta: 500_000, originalContext: nil, path: "x.gguf")
        }
        #expect(try fit(divisors) == .init(type: .llama3, factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192))
        #expect(try fit([Float](repeating: 1, count: 64)) == nil)
        var odd = divisors
        odd[40] *= 1.5
        #expect { try fit(odd) } throws: { "\($0)".hasPrefix("x.gguf: rope_freqs.weight") && "\($0)".contains("match no llama3 rope scaling") }
        #expect { try fit(Array(divisors.prefix(10))) } throws: { "\($0)".contains("expected head_dim / 2 = 64") }
    }
}
