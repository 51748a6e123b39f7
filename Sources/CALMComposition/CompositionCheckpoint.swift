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
    /// The expert registry the composition was trained with, relative to the composition's
    /// directory when possible (absent in compositions written before it was recorded).
    public var registry: String?
    public var heads: Int
    /// Rotary position embeddings on bridge queries and keys.
    public var rotary: Bool
    public var gate: String
    /// Whether gates read each expert's prediction entropy and its excess over the surest expert's (absent: no).
    public var confidenceGates: Bool?
    /// Whether gates read how surprised each expert was by the text, lately and so far beyond the
    /// least surprised expert (absent: no).
    public var familiarityGates: Bool?
    /// How many tokens late familiarity gates read recent surprisal (absent in compositions
    /// trained before the lag: they read it at the current token, which this build does not run).
    public var familiarityLag: Int?
    public var seed: UInt64

    public static let familiarityLag = 1

    enum CodingKeys: String, CodingKey {
        case anchor, augments, registry, heads, rotary, gate, seed
        case confidenceGates = "confidence_gates"
        case familiarityGates = "familiarity_gates"
        case familiarityLag = "familiarity_lag"
    }

    /// Why this build cannot run the composition as it was trained (nil: it can).
    public var incompatibility: String? {
        guard familiarityGates == true, familiarityLag != Self.familiarityLag else { return nil }
        return "its familiarity gates read recent surprisal \(familiarityLag.map { "\($0) tokens late" } ?? "at the current token"), "
            + "this build \(Self.familiarityLag) token late; compose it again"
    }

    public init(anchor: AnchorReference, augments: [AugmentReference], registry: String? = nil, heads: Int, rotary: Bool = true,
                confidenceGates: Bool = false, familiarityGates: Bool = false, seed: UInt64) {
        self.anchor = anchor
        self.augments = augments
        self.registry = registry
        self.heads = heads
        self.rotary = rotary
        self.confidenceGates = confidenceGates ? true : nil
        self.familiarityGates = familiarityGates ? true : nil
        self.familiarityLag = familiarityGates ? Self.familiarityLag : nil
        let terms = ["w · rms(h)", "u · rms(z)"] + (confidenceGates ? ["c · (e, e - min e')"] : [])
            + (familiarityGates ? ["f · (r, s - min s')"] : []) + ["b"]
        let meanings = ["h: anchor state", "z: attended augment states"]
            + (confidenceGates ? ["e: the augment's next-token entropy in nats, min e': the lowest of all augments'"] : [])
            + (familiarityGates ? ["r: the augment's recent surprisal at the tokens read before this one (nats, halved per token), "
                                   + "s: its surprisal so far, min s': the lowest of all augments'"] : [])
        gate = "sigmoid(\(terms.joined(separator: " + "))), per token, per augment and connection (\(meanings.joined(separator: ", ")))"
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
    /// Where the anchor and each expert (in spec order) were found.
    public let anchorPath: String
    public let expertPaths: [String]
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
    /// composition and its anchor can move together, e.g. in a clone of a repository; absolute
    /// when the two share nothing but the root.
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
        if let reason = spec.incompatibility { throw CheckpointError(path: path, message: reason) }
        return (spec, file)
    }

    /// Loads a composition with the anchor and experts it references, found by `resolver`
    /// (stored paths, registries, overrides) and checked against their content hashes.
    public static func load(_ path: String, resolver: ModelResolver = ModelResolver()) throws -> LoadedComposition {
        let (spec, file) = try readSpec(path)
        defer { try? file.close() }
        let anchor = try resolver.anchor(spec, compositionPath: path)
        let experts = try spec.augments.map { try resolver.expert($0, spec: spec, compositionPath: path) }
        var weights = try CheckpointWeights(file: file)
        let model = try CompositionAssembly.assemble(spec, anchor: anchor.model, experts: experts.map(\.model), weights: &weights)
        try weights.finish()
        let gates = try file.stringAttribute("gate_statistics").flatMap { try? JSONDecoder().decode([GateStatistics].self, from: Data($0.utf8)) }
        let cost = try file.stringAttribute("cost_report").flatMap { try? JSONDecoder().decode(CostReport.self, from: Data($0.utf8)) }
        return LoadedComposition(model: model, tokenizer: anchor.tokenizer, spec: spec, path: path, anchorPath: anchor.path,
                                 expertPaths: experts.map(\.path),
                                 gateStatistics: gates, costReport: cost)
    }
}

/// The one way a composition is put together, for a new one (`calm compose`) and a stored one
/// alike: the spec's augments in order, each with its connections, bridges from `weights`.
public enum CompositionAssembly {
    public static func assemble(_ spec: CompositionSpec, anchor: TransformerLM, experts: [any AugmentModel],
                                weights: inout some WeightSource) throws -> ComposedModel {
        guard experts.count == spec.augments.count else {
            throw ConnectionError("the composition names \(spec.augments.count) experts, \(experts.count) given")
        }
        let augments = zip(spec.augments, experts).map { (name: $0.name, model: $1, connections: $0.connections) }
        return try ComposedModel(anchor: anchor, augments: augments, heads: spec.heads, rotaryBridges: spec.rotary,
                                 confidenceGates: spec.confidenceGates ?? false, familiarityGates: spec.familiarityGates ?? false,
                                 weights: &weights)
    }
}
