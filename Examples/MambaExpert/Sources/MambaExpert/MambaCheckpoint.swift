import CALMCheckpoint
import CALMComposition
import CALMSupport
import CALMTokenizers

/// Mamba models in the CALM checkpoint layout: the common header with `model_type = "mamba"`
/// and the `MambaConfig` JSON as `config`, and one float32 dataset per weight under `/tensors`:
///
/// ```
/// embed.weight (V, C)                      layers.<l>.norm.weight (C)
/// layers.<l>.mixer.in_proj.weight (2E, C)  layers.<l>.mixer.in_proj.bias (2E)    [use_bias]
/// layers.<l>.mixer.conv1d.weight (E, 1, K) layers.<l>.mixer.conv1d.bias (E)     [use_conv_bias]
/// layers.<l>.mixer.x_proj.weight (R+2N, E) layers.<l>.mixer.dt_proj.weight (E, R), .bias (E)
/// layers.<l>.mixer.A_log (E, N)            layers.<l>.mixer.D (E)
/// layers.<l>.mixer.out_proj.weight (C, E)  layers.<l>.mixer.out_proj.bias (C)   [use_bias]
/// final_norm.weight (C)                    lm_head.weight (V, C)                [not tied]
/// ```
///
/// Loading is as strict as for transformers: every tensor present with its exact shape and
/// finite values, none left over.
public enum MambaCheckpoint {
    /// The runtime name under which `ArchitectureRegistry` serves `mamba` checkpoints.
    public static let runtime = "mamba"

    /// Saves atomically with the content hash; returns the hash.
    @discardableResult
    public static func save(_ model: MambaLM, tokenizer: any Tokenizer, to path: String) throws -> String {
        let configJSON = try model.config.jsonString()
        let hash = try ContentHash.of(configurationJSON: configJSON, tokenizer: tokenizer, weights: model.weights)
        try writeAtomically(to: path) { temporary in
            let file = try HDF5File.create(temporary)
            try writeCheckpointHeader(file, kind: "model")
            try file.setAttribute("model_type", MambaConfig.modelType)
            try file.setAttribute("config", configJSON)
            try file.setAttribute("tokenizer", try tokenizer.serialized())
            try file.setAttribute(ContentHash.attribute, hash)
            try writeWeights(model.weights, to: file)
            try sealCheckpoint(file)
            try file.close()
        }
        return hash
    }

    /// Builds the model from an open checkpoint whose header was read (the registry's loader).
    public static func read(_ file: HDF5File, header: ModelHeader) throws -> MambaLM {
        let config: MambaConfig
        do { config = try MambaConfig.parse(json: header.configJSON) } catch {
            throw CheckpointError(path: file.path, message: "\(error)")
        }
        guard header.tokenizer.vocabularySize <= config.vocabSize else {
            throw CheckpointError(path: file.path, message: "tokenizer has \(header.tokenizer.vocabularySize) tokens but the model only \(config.vocabSize)")
        }
        var weights = try CheckpointWeights(file: file)
        let model = try MambaLM(config: config, weights: &weights)
        try weights.finish()
        return model
    }

    /// Registers the `mamba` runtime with `ArchitectureRegistry` (idempotent), so every loader of
    /// model checkpoints (expert registry, compositions, the CLI) reads Mamba files.
    public static func registerRuntime() throws {
        try ArchitectureRegistry.register(runtime: runtime, families: [MambaConfig.modelType]) { file, header in
            try read(file, header: header)
        }
    }
}
