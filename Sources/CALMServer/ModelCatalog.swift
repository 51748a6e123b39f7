import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTokenizers
import Foundation

/// One model a request can name: a plain checkpoint or a composition. Models and experts are
/// shared objects: compositions over one anchor hold the same `TransformerLM`.
public final class ServedModel: @unchecked Sendable {
    public enum Kind { case model, composition }
    /// The name requests use (the file name without `.h5`).
    public let name: String
    public let kind: Kind
    public let path: String
    /// The plain model, or the composition's anchor.
    public let anchor: TransformerLM
    /// Set for compositions.
    public let composed: ComposedModel?
    public let tokenizer: any Tokenizer
    public let maxContext: Int
    /// Expert names, in the composition's order (empty for a plain model).
    public var experts: [String] { composed?.augments.map(\.name) ?? [] }

    init(name: String, kind: Kind, path: String, anchor: TransformerLM, composed: ComposedModel?, tokenizer: any Tokenizer) {
        self.name = name
        self.kind = kind
        self.path = path
        self.anchor = anchor
        self.composed = composed
        self.tokenizer = tokenizer
        maxContext = composed?.maxContext ?? anchor.config.maxPositions
    }

    /// Gate labels in the order per-token gate values are reported: `expert:anchorLayer<-expertLayer`.
    var gateLabels: [String] { gateKeys.map(\.label) }

    var gateKeys: [(key: GateKey, label: String)] { composed?.gateConnections ?? [] }
}

/// Every model and composition a server serves, loaded once at start: each distinct anchor
/// and expert (by content hash) is resident once however many compositions name it.
public final class ModelCatalog: @unchecked Sendable {
    public let models: [ServedModel]
    /// Each distinct set of weights held in memory.
    public let resident: [(path: String, contentHash: String, weightBytes: Int)]

    /// Plain models first, so a composition whose anchor is also served plain shares it.
    public init(modelPaths: [String], compositionPaths: [String], registry: String? = nil) throws {
        let shared = SharedModels()
        var models: [ServedModel] = []
        for path in modelPaths {
            let checkpoint = try ModelCheckpoint.load(path)
            let hash = try checkpoint.contentHash()
            shared.remember(model: checkpoint.model, tokenizer: checkpoint.tokenizer, contentHash: hash, path: path)
            models.append(ServedModel(name: Self.name(of: path), kind: .model, path: path, anchor: checkpoint.model,
                                      composed: nil, tokenizer: checkpoint.tokenizer))
        }
        let resolver = ModelResolver(registryOverride: registry, shared: shared)
        for path in compositionPaths {
            let loaded = try CompositionCheckpoint.load(path, resolver: resolver)
            models.append(ServedModel(name: Self.name(of: path), kind: .composition, path: path, anchor: loaded.model.anchor,
                                      composed: loaded.model, tokenizer: loaded.tokenizer))
        }
        var seen = Set<String>()
        for model in models where !seen.insert(model.name).inserted {
            throw ServerSetupError("two served models are named \"\(model.name)\" (names come from file names); rename one file")
        }
        guard !models.isEmpty else { throw ServerSetupError("nothing to serve: give --model FILE or --composition FILE") }
        self.models = models
        resident = shared.resident
    }

    public func model(named name: String) -> ServedModel? { models.first { $0.name == name } }

    static func name(of path: String) -> String {
        let file = URL(fileURLWithPath: path).lastPathComponent
        return file.hasSuffix(".h5") ? String(file.dropLast(3)) : file
    }
}

/// A server that cannot start (bad options, nothing to serve).
public struct ServerSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
