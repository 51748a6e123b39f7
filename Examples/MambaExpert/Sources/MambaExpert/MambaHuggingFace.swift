import CALMCheckpoint
import CALMHuggingFace
import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Foundation

/// Converts a Hugging Face Mamba directory (`config.json` with `model_type: "mamba"`,
/// `model.safetensors`, `tokenizer.json`) into a `MambaLM`, strictly: every weight from a tensor
/// of the right shape, every tensor in the file used.
public enum MambaHuggingFace {
    public struct Converted {
        public let model: MambaLM
        public let tokenizer: HuggingFaceTokenizer
        /// The dtypes found in the safetensors file (F16 and BF16 are widened to float32).
        public let dtypes: Set<String>
    }

    public static func load(directory: String) throws -> Converted {
        let configPath = (directory as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw MambaError("\(configPath): missing (a Hugging Face model directory has a config.json)")
        }
        guard let json = JSONValue.parse(data)?.object else { throw MambaError("\(configPath): is not a JSON object") }
        let config = try Self.config(HuggingFaceFields(path: configPath, json: json))
        let weightsPath = (directory as NSString).appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            throw MambaError("\(directory): no model.safetensors (sharded and PyTorch pickle weights are not read here)")
        }
        var source = SafetensorsWeights(file: try SafetensorsFile.open(weightsPath))
        let model = try MambaLM(config: config, weights: &source)
        for name in source.file.names where !source.used.contains(name) {
            // A tied head may still be stored; accept it only if it really is the embedding.
            if config.tiedEmbeddings, name == "lm_head.weight", try source.file.floats(name).data == model.embedding.data { continue }
            throw MambaError("\(weightsPath): unexpected tensor \(name) (not a parameter of a mamba model with this config.json)")
        }
        let tokenizer = try HuggingFaceTokenizer.load(directory: directory)
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw MambaError("\(directory): tokenizer.json has \(tokenizer.vocabularySize) tokens but config.json vocab_size is \(config.vocabSize)")
        }
        return Converted(model: model, tokenizer: tokenizer, dtypes: Set(source.file.entries.values.map(\.dtype.rawValue)))
    }

    /// Converts `directory` and writes a CALM checkpoint to `output` (atomically).
    @discardableResult
    public static func convert(directory: String, to output: String) throws -> Converted {
        let converted = try load(directory: directory)
        try MambaCheckpoint.save(converted.model, tokenizer: converted.tokenizer, to: output)
        return converted
    }

    /// `MambaConfig` from `config.json`; a field that would change the math in a way this model
    /// does not implement is refused by name.
    static func config(_ hf: HuggingFaceFields) throws -> MambaConfig {
        guard let type = hf.json["model_type"]?.string else { throw hf.fail("model_type", "is missing") }
        guard type == MambaConfig.modelType else { throw hf.fail("model_type", "is \"\(type)\", expected \"mamba\"") }
        let activation = try hf.string("hidden_act") ?? "silu"
        guard activation == "silu" else { throw hf.fail("hidden_act", "\"\(activation)\" is not supported (supported: silu)") }
        let hidden = try hf.int("hidden_size"), expand = try hf.int("expand", default: 2)
        if let inner = hf.json["intermediate_size"], !inner.isNull, inner.int != expand * hidden {
            throw hf.fail("intermediate_size", "= \(inner) differs from expand × hidden_size = \(expand * hidden)")
        }
        var rank: Int?
        if let value = hf.json["time_step_rank"], !value.isNull, value.string != "auto" {
            guard let r = value.int else { throw hf.fail("time_step_rank", "is neither \"auto\" nor an integer") }
            rank = r
        }
        do {
            return try MambaConfig(
                vocabSize: try hf.int("vocab_size"), hiddenSize: hidden, stateSize: try hf.int("state_size", default: 16),
                numLayers: try hf.int("num_hidden_layers"), expand: expand, convKernel: try hf.int("conv_kernel", default: 4),
                timeStepRank: rank, layerNormEpsilon: Float(try hf.double("layer_norm_epsilon", default: 1e-5)),
                useBias: try hf.bool("use_bias", default: false), useConvBias: try hf.bool("use_conv_bias", default: true),
                tiedEmbeddings: try hf.bool("tie_word_embeddings", default: true))
        } catch let error as MambaError {
            throw MambaError("\(hf.path): \(error)")
        }
    }
}

/// `config.json` fields with typed accessors; errors name the file and the field.
struct HuggingFaceFields {
    let path: String
    let json: [String: JSONValue]

    func fail(_ field: String, _ message: String) -> MambaError { MambaError("\(path): \(field) \(message)") }

    private func field<T>(_ key: String, _ fallback: T?, _ kind: String, _ extract: (JSONValue) -> T?) throws -> T {
        guard let value = json[key], !value.isNull else {
            guard let fallback else { throw fail(key, "is missing") }
            return fallback
        }
        guard let x = extract(value) else { throw fail(key, "is not \(kind)") }
        return x
    }

    func int(_ key: String, default fallback: Int? = nil) throws -> Int { try field(key, fallback, "an integer", \.int) }
    func double(_ key: String, default fallback: Double? = nil) throws -> Double { try field(key, fallback, "a number", \.number) }
    func bool(_ key: String, default fallback: Bool) throws -> Bool { try field(key, fallback, "true or false", \.bool) }
    func string(_ key: String) throws -> String? {
        guard let value = json[key], !value.isNull else { return nil }
        return try field(key, nil, "a string", \.string)
    }
}

/// Hands each weight its Hugging Face tensor (`backbone.` prefixed, `embeddings`/`norm_f`
/// renamed), shape- and finiteness-checked, while the model is built.
struct SafetensorsWeights: WeightSource {
    let file: SafetensorsFile
    private(set) var used = Set<String>()

    init(file: SafetensorsFile) { self.file = file }

    /// The Hugging Face name of a CALM weight name.
    func sourceName(_ name: String) -> String {
        switch name {
        case "embed.weight":
            // Checkpoints saved before transformers renamed it hold `embedding`.
            let legacy = "backbone.embedding.weight"
            return file.entries["backbone.embeddings.weight"] == nil && file.entries[legacy] != nil ? legacy : "backbone.embeddings.weight"
        case "final_norm.weight": return "backbone.norm_f.weight"
        case "lm_head.weight": return name
        default: return "backbone.\(name)"
        }
    }

    mutating func weight(_ name: String, shape: [Int], initial: WeightInit) throws -> Tensor {
        let source = sourceName(name)
        guard file.entries[source] != nil else { throw MambaError("\(file.path): missing tensor \(source) (needed for \(name))") }
        let (stored, data) = try file.floats(source)
        guard stored == shape else {
            throw MambaError("\(file.path): tensor \(source) has shape \(stored), expected \(shape) for \(name)")
        }
        if let bad = data.firstIndex(where: { !$0.isFinite }) {
            throw MambaError("\(file.path): tensor \(source) holds a non-finite value at element \(bad)")
        }
        used.insert(source)
        return Tensor(shape: shape, data: data)
    }
}
