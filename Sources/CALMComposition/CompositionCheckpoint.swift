import CALMCheckpoint
import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Foundation

/// What a composition is made of, stored as the `composition` JSON attribute of its checkpoint.
public struct CompositionSpec: Codable, Sendable, Equatable {
    public struct AnchorReference: Codable, Sendable, Equatable {
        /// The anchor checkpoint, relative to the composition file's directory when possible.
        public var path: String
        public var contentHash: String
        public var architecture: String
        enum CodingKeys: String, CodingKey { case path, architecture, contentHash = "content_hash" }
        public init(path: String, contentHash: String, architecture: String) {
            self.path = path
            self.contentHash = contentHash
            self.architecture = architecture
        }
    }

    public struct AugmentReference: Codable, Sendable, Equatable {
        /// Name in the expert registry.
        public var name: String
        public var contentHash: String
        public var architecture: String
        public var connections: [Connection]
        enum CodingKeys: String, CodingKey { case name, architecture, connections, contentHash = "content_hash" }
        public init(name: String, contentHash: String, architecture: String, connections: [Connection]) {
            self.name = name
            self.contentHash = contentHash
            self.architecture = architecture
            self.connections = connections
        }
    }

    public var anchor: AnchorReference
    public var augments: [AugmentReference]
    public var heads: Int
    /// Rotary position embeddings on bridge queries and keys.
    public var rotary: Bool
    public var gate = "sigmoid(w · rms(h) + u · rms(z) + b), per token, per augment and connection (h: anchor state, z: attended augment states)"
    public var seed: UInt64

    enum CodingKeys: String, CodingKey { case anchor, augments, heads, rotary, gate, seed }

    public init(anchor: AnchorReference, augments: [AugmentReference], heads: Int, rotary: Bool = true, seed: UInt64) {
        self.anchor = anchor
        self.augments = augments
        self.heads = heads
        self.rotary = rotary
        self.seed = seed
    }
}

/// Per-connection gate statistics over a data set.
public struct GateStatistics: Codable, Sendable, Equatable {
    public var augment: String
    public var connection: Connection
    public var mean: Float, std: Float, min: Float, max: Float
    public var count: Int

    public static func from(_ record: GateRecord, model: ComposedModel) -> [GateStatistics] {
        record.keys.sorted { ($0.augment, $0.connection) < ($1.augment, $1.connection) }.map { key in
            let values = record[key]!
            let mean = values.reduce(0, +) / Float(Swift.max(values.count, 1))
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(Swift.max(values.count, 1))
            return GateStatistics(augment: model.augments[key.augment].name,
                                  connection: model.augments[key.augment].bridges[key.connection].connection,
                                  mean: mean, std: variance.squareRoot(), min: values.min() ?? 0, max: values.max() ?? 0,
                                  count: values.count)
        }
    }
}

/// A composition loaded from its checkpoint, with everything it references.
public struct LoadedComposition {
    public let model: ComposedModel
    public let tokenizer: any Tokenizer
    public let spec: CompositionSpec
    public let path: String
    public let gateStatistics: [GateStatistics]?
    public let costReport: CostReport?
}

/// The composition checkpoint: the common header with kind = "composition", the `composition`
/// spec JSON, the anchor's tokenizer, bridge weights under `/tensors`, and optionally
/// `gate_statistics` and `cost_report` JSON attributes and resumable `/training` state.
public enum CompositionCheckpoint {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Path of `target` relative to the directory of `base` (with `..` where needed), so a
    /// composition and its anchor can move together, e.g. in a clone of a repository.
    public static func reference(to target: String, from base: String) -> String {
        let to = URL(fileURLWithPath: target).standardizedFileURL.pathComponents
        let from = URL(fileURLWithPath: base).deletingLastPathComponent().standardizedFileURL.pathComponents
        var common = 0
        while common < min(to.count, from.count), to[common] == from[common] { common += 1 }
        guard common > 1 else { return URL(fileURLWithPath: target).standardizedFileURL.path }  // only "/" shared
        return (Array(repeating: "..", count: from.count - common) + to[common...]).joined(separator: "/")
    }

    public static func save(_ model: ComposedModel, spec: CompositionSpec, tokenizer: any Tokenizer, to path: String,
                            gateStatistics: [GateStatistics]? = nil, costReport: CostReport? = nil,
                            extra: ((HDF5File) throws -> Void)? = nil) throws {
        try writeAtomically(to: path) { temporary in
            let file = try HDF5File.create(temporary)
            try writeCheckpointHeader(file, kind: "composition")
            try file.setAttribute("composition", try encode(spec))
            try file.setAttribute("tokenizer", try tokenizer.serialized())
            if let gateStatistics { try file.setAttribute("gate_statistics", try encode(gateStatistics)) }
            if let costReport { try file.setAttribute("cost_report", try encode(costReport)) }
            try writeTensors(model.parameters, to: file)
            try extra?(file)
            try sealCheckpoint(file)
            try file.close()
        }
    }

    /// Reads only the spec (no models loaded).
    public static func readSpec(_ path: String) throws -> (spec: CompositionSpec, file: HDF5File) {
        let file = try openCheckpoint(path, kind: "composition")
        guard let json = try file.stringAttribute("composition"),
              let spec = try? JSONDecoder().decode(CompositionSpec.self, from: Data(json.utf8)) else {
            throw CheckpointError(path: path, message: "missing or malformed composition attribute")
        }
        return (spec, file)
    }

    /// Resolves the anchor reference: relative to the composition file, then to the working directory.
    public static func anchorPath(_ reference: String, compositionPath: String) -> String {
        if reference.hasPrefix("/") { return reference }
        let besideComposition = URL(fileURLWithPath: compositionPath).deletingLastPathComponent()
            .appendingPathComponent(reference).path
        return FileManager.default.fileExists(atPath: besideComposition) ? besideComposition : reference
    }

    /// Loads a composition, its anchor and its experts, checking every reference's content hash.
    public static func load(_ path: String, registry: ExpertRegistry) throws -> LoadedComposition {
        let (spec, file) = try readSpec(path)
        let anchorFile = anchorPath(spec.anchor.path, compositionPath: path)
        let anchor = try ArchitectureRegistry.load(anchorFile)
        guard anchor.contentHash == spec.anchor.contentHash else {
            throw CheckpointError(path: path, message: "anchor \(anchorFile) has changed since the composition was trained (content hash differs)")
        }
        guard let anchorLM = anchor.model as? TransformerLM else {
            throw CheckpointError(path: path, message: "anchor \(anchorFile) is not a transformer LM")
        }
        var augments: [(name: String, model: any AugmentModel, connections: [Connection])] = []
        for reference in spec.augments {
            let (_, expert) = try registry.load(reference.name, expectedHash: reference.contentHash)
            augments.append((reference.name, expert.model, reference.connections))
        }
        let model = try ComposedModel(anchor: anchorLM, augments: augments, heads: spec.heads, rotaryBridges: spec.rotary,
                                      seed: spec.seed)
        try readTensors(into: model.parameters, from: file)
        let gates = try file.stringAttribute("gate_statistics").flatMap { try? JSONDecoder().decode([GateStatistics].self, from: Data($0.utf8)) }
        let cost = try file.stringAttribute("cost_report").flatMap { try? JSONDecoder().decode(CostReport.self, from: Data($0.utf8)) }
        return LoadedComposition(model: model, tokenizer: anchor.tokenizer, spec: spec, path: path,
                                 gateStatistics: gates, costReport: cost)
    }
}
