import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Foundation

/// What every model checkpoint records besides its weights, whatever the architecture.
public struct ModelHeader {
    /// The family string (`model_type`, e.g. "llama").
    public let modelType: String
    /// The architecture's configuration as JSON.
    public let configJSON: String
    public let tokenizer: any Tokenizer
    /// SHA-256 of the content (see `ContentHash`), as stored at save time; computed from the
    /// tensors for files written before it was stored.
    public let storedContentHash: String?

    /// Reads the header attributes of an open model checkpoint.
    public static func read(_ file: HDF5File) throws -> ModelHeader {
        guard let type = try file.stringAttribute("model_type") else {
            throw CheckpointError(path: file.path, message: "missing model_type attribute")
        }
        guard let configJSON = try file.stringAttribute("config") else {
            throw CheckpointError(path: file.path, message: "missing config attribute")
        }
        guard let tokenizerJSON = try file.stringAttribute("tokenizer") else {
            throw CheckpointError(path: file.path, message: "missing tokenizer attribute")
        }
        let tokenizer: any Tokenizer
        do { tokenizer = try TokenizerRegistry.load(json: tokenizerJSON) } catch {
            throw CheckpointError(path: file.path, message: "\(error)")
        }
        return ModelHeader(modelType: type, configJSON: configJSON, tokenizer: tokenizer,
                           storedContentHash: try file.stringAttribute(ContentHash.attribute))
    }
}

/// Identity of a model's content, independent of how the HDF5 file was laid out: SHA-256 over
/// the configuration, the tokenizer description and, in name order, every tensor's name, shape
/// and float32 bytes (a quantized tensor: name, logical shape, format and its blocks, so
/// quantizing a model gives it a new identity). Computed once when a checkpoint is written
/// and stored beside it.
public enum ContentHash {
    public static let attribute = "content_hash"

    public static func of(configurationJSON: String, tokenizer: any Tokenizer, parameters: NamedParameters) throws -> String {
        try of(configurationJSON: configurationJSON, tokenizer: tokenizer, weights: parameters.map { ($0.name, .dense($0.tensor)) })
    }

    public static func of(configurationJSON: String, tokenizer: any Tokenizer, weights: NamedWeights) throws -> String {
        var digest = ContentDigest()
        digest.update(configurationJSON)
        digest.update(try tokenizer.serialized())
        for (name, weight) in weights.sorted(by: { $0.name < $1.name }) {
            switch weight {
            case .dense(let tensor):
                digest.update("\n\(name)\(tensor.shape)")
                tensor.data.withUnsafeBytes { digest.update($0) }
            case .quantized(let matrix):
                digest.update("\n\(name)\(matrix.shape)\(matrix.format.rawValue)")
                matrix.bytes.withUnsafeBytes { digest.update($0) }
            }
        }
        return digest.finalize()
    }
}

/// A transformer LM with its tokenizer, as stored in a model checkpoint.
public struct ModelCheckpoint {
    public let model: TransformerLM
    public let tokenizer: any Tokenizer
    /// The content hash stored in the file (nil for files written before it was stored).
    public let storedContentHash: String?
    public let path: String

    /// The stored content hash, else one computed from the tensors.
    public func contentHash() throws -> String {
        try storedContentHash
            ?? ContentHash.of(configurationJSON: try model.config.jsonString(), tokenizer: tokenizer, weights: model.weights)
    }

    /// Loads and validates a model checkpoint. The model comes back frozen.
    public static func load(_ path: String) throws -> ModelCheckpoint {
        let file = try openCheckpoint(path, kind: "model")
        defer { try? file.close() }
        return try read(file, header: try ModelHeader.read(file))
    }

    /// Builds the model from an open checkpoint whose header was already read: every weight
    /// is read straight into its tensor, none is initialised first.
    public static func read(_ file: HDF5File, header: ModelHeader) throws -> ModelCheckpoint {
        // Another runtime's checkpoint (registered by a package) is named as such, not misread.
        guard TransformerConfig.families.contains(header.modelType) else {
            throw CheckpointError(path: file.path, message: "model_type \"\(header.modelType)\" is not a transformer (\(TransformerConfig.families.joined(separator: ", "))); this command reads transformer checkpoints only")
        }
        let config: TransformerConfig
        do { config = try TransformerConfig.parse(json: header.configJSON) } catch {
            throw CheckpointError(path: file.path, message: "\(error)")
        }
        guard header.modelType == config.architecture else {
            throw CheckpointError(path: file.path, message: "model_type \"\(header.modelType)\" disagrees with config architecture \"\(config.architecture)\"")
        }
        guard header.tokenizer.vocabularySize <= config.vocabSize else {
            throw CheckpointError(path: file.path, message: "tokenizer has \(header.tokenizer.vocabularySize) tokens but the model only \(config.vocabSize)")
        }
        var weights = try CheckpointWeights(file: file)
        let model = try TransformerLM(config: config, weights: &weights)
        try weights.finish()
        return ModelCheckpoint(model: model, tokenizer: header.tokenizer, storedContentHash: header.storedContentHash, path: file.path)
    }

    /// Saves atomically, with the content hash. `extra` may add more groups (e.g. training
    /// state) to the same file.
    @discardableResult
    public static func save(model: TransformerLM, tokenizer: any Tokenizer, to path: String,
                            extra: ((HDF5File) throws -> Void)? = nil) throws -> String {
        let configJSON = try model.config.jsonString()
        let hash = try ContentHash.of(configurationJSON: configJSON, tokenizer: tokenizer, weights: model.weights)
        try writeAtomically(to: path) { temporary in
            let file = try HDF5File.create(temporary)
            try writeCheckpointHeader(file, kind: "model")
            try file.setAttribute("model_type", model.config.architecture)
            try file.setAttribute("config", configJSON)
            try file.setAttribute("tokenizer", try tokenizer.serialized())
            try file.setAttribute(ContentHash.attribute, hash)
            try writeWeights(model.weights, to: file)
            try extra?(file)
            try sealCheckpoint(file)
            try file.close()
        }
        return hash
    }
}
