import CALMCheckpoint
import CALMModels
import CALMSupport
import CALMTokenizers
import Foundation

/// A loaded frozen model with its tokenizer and identity.
public struct LoadedModel {
    public let model: any AugmentModel
    public let tokenizer: any Tokenizer
    /// The checkpoint's model_type string.
    public let architecture: String
    /// SHA-256 over configuration, tokenizer and every tensor (see `ContentHash`).
    public let contentHash: String
    public let path: String
}

/// Maps the model-type string stored in a checkpoint to a loader. A new architecture is
/// supported by conforming to `AugmentModel` and registering here; nothing else changes.
public enum ArchitectureRegistry {
    public typealias Loader = @Sendable (_ path: String) throws -> (model: any AugmentModel, tokenizer: any Tokenizer)

    private static let lock = NSLock()
    nonisolated(unsafe) private static var loaders: [String: Loader] = {
        let transformer: Loader = { path in
            let c = try ModelCheckpoint.load(path)
            return (c.model, c.tokenizer)
        }
        // Every family the transformer configuration covers.
        return ["llama": transformer, "mistral": transformer, "qwen2": transformer, "gemma": transformer, "gpt2": transformer]
    }()

    public static func register(_ modelType: String, loader: @escaping Loader) {
        lock.withLock { loaders[modelType] = loader }
    }

    public static var knownTypes: [String] { lock.withLock { loaders.keys.sorted() } }

    /// Loads a model checkpoint through the loader registered for its model_type.
    public static func load(_ path: String) throws -> LoadedModel {
        let file = try openCheckpoint(path, kind: "model")
        guard let type = try file.stringAttribute("model_type") else {
            throw CheckpointError(path: path, message: "missing model_type attribute")
        }
        try file.close()
        guard let loader = lock.withLock({ loaders[type] }) else {
            throw CheckpointError(path: path, message: "unknown architecture \"\(type)\" (known: \(knownTypes.joined(separator: ", ")))")
        }
        let (model, tokenizer) = try loader(path)
        model.freeze()
        return LoadedModel(model: model, tokenizer: tokenizer, architecture: type,
                           contentHash: try ContentHash.of(model: model, tokenizer: tokenizer), path: path)
    }
}

/// Identity of a model's content, independent of how the HDF5 file was laid out.
public enum ContentHash {
    /// SHA-256 over the configuration, the tokenizer description and, in name order, every
    /// tensor's name, shape and little-endian float32 bytes.
    public static func of(model: any AugmentModel, tokenizer: any Tokenizer) throws -> String {
        var hasher = ContentDigest()
        hasher.update(model.configurationJSON)
        hasher.update(try tokenizer.serialized())
        for (name, tensor) in model.parameters.sorted(by: { $0.name < $1.name }) {
            hasher.update("\n\(name)\(tensor.shape)")
            tensor.data.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize()
    }
}
