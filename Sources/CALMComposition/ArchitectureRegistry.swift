import CALMCheckpoint
import CALMModels
import CALMTokenizers
import Foundation

/// A loaded frozen model with its tokenizer and identity.
public struct LoadedModel<Model> {
    public let model: Model
    public let tokenizer: any Tokenizer
    /// The checkpoint's model_type string.
    public let architecture: String
    /// SHA-256 over configuration, tokenizer and every tensor (see `ContentHash`).
    public let contentHash: String
    public let path: String
}

/// Maps a checkpoint's model_type to the runtime that builds it. A runtime (e.g. "transformer")
/// serves several model families; a new architecture is a type conforming to `AugmentModel`
/// plus one `register` call naming its runtime and families, and nothing else changes.
public enum ArchitectureRegistry {
    /// Builds the model from an open checkpoint whose common header was already read.
    public typealias Loader = @Sendable (_ file: HDF5File, _ header: ModelHeader) throws -> any AugmentModel

    public struct Runtime: Sendable {
        public let name: String
        public let families: [String]
        public let load: Loader
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var runtimes: [String: Runtime] = [
        "transformer": Runtime(name: "transformer", families: TransformerConfig.families) { file, header in
            try ModelCheckpoint.read(file, header: header).model
        }
    ]

    /// Registers (or replaces) a runtime serving `families`; a family another runtime already
    /// serves is refused, so which runtime loads a checkpoint never depends on order.
    public static func register(runtime name: String, families: [String], loader: @escaping Loader) throws {
        try lock.withLock {
            if let clash = runtimes.values.first(where: { $0.name != name && !Set($0.families).isDisjoint(with: families) }) {
                let shared = Set(clash.families).intersection(families).sorted().joined(separator: ", ")
                throw RegistryError("runtime \"\(name)\": \(shared) already served by runtime \"\(clash.name)\"")
            }
            runtimes[name] = Runtime(name: name, families: families, load: loader)
        }
    }

    /// Every model_type some runtime serves.
    public static var knownTypes: [String] { lock.withLock { runtimes.values.flatMap(\.families).sorted() } }

    public static func runtime(serving modelType: String) -> Runtime? {
        lock.withLock { runtimes.values.first { $0.families.contains(modelType) } }
    }

    /// Loads a model checkpoint through the runtime serving its model_type.
    public static func load(_ path: String) throws -> LoadedModel<any AugmentModel> {
        let file = try openCheckpoint(path, kind: "model")
        defer { try? file.close() }
        return try load(file)
    }

    /// The same from a checkpoint opened by the caller (which closes it).
    public static func load(_ file: HDF5File) throws -> LoadedModel<any AugmentModel> {
        let header = try ModelHeader.read(file)
        let model = try build(file, header: header)
        let hash = try header.storedContentHash
            ?? ContentHash.of(configurationJSON: model.configurationJSON, tokenizer: header.tokenizer, weights: model.weights)
        return LoadedModel(model: model, tokenizer: header.tokenizer, architecture: header.modelType, contentHash: hash,
                           path: file.path)
    }

    /// Only the model, through the runtime serving the header's model_type (no content hash is
    /// computed for files that lack a stored one: running a model does not need it).
    public static func build(_ file: HDF5File, header: ModelHeader) throws -> any AugmentModel {
        guard let runtime = runtime(serving: header.modelType) else {
            throw CheckpointError(path: file.path, message: "unknown architecture \"\(header.modelType)\" (known: \(knownTypes.joined(separator: ", ")))")
        }
        return try runtime.load(file, header)
    }

    /// Recomputes a loaded model's content hash from its tensors (`calm experts verify`).
    public static func recomputedHash(_ loaded: LoadedModel<any AugmentModel>) throws -> String {
        try ContentHash.of(configurationJSON: loaded.model.configurationJSON, tokenizer: loaded.tokenizer,
                           weights: loaded.model.weights)
    }
}
