import CALMModels
import CALMTensor

/// One augment inside a composition: the frozen expert and its bridges into the anchor.
public struct AugmentSlot {
    public let name: String
    public let model: any AugmentModel
    public let bridges: [Bridge]
    /// With confidence or familiarity gates: the augment as a language model, whose predictions the gates read.
    let predictor: (any CausalLanguageModel)?
    /// Whether its gates read its prediction entropy, and how surprised it was by the text.
    let readsConfidence: Bool, readsFamiliarity: Bool
    /// The augment blocks whose outputs the bridges read (and the last block for the gates' signals).
    var layers: Set<Int> {
        Set(bridges.map(\.connection.augmentLayer)).union(predictor == nil ? [] : [model.layerCount - 1])
    }

    /// The augment's prediction entropy `(B, T, 1)` from its block outputs; nil without confidence gates.
    func entropy(_ states: [Int: Tensor]) -> Tensor? {
        guard readsConfidence, let predictor, let last = states[model.layerCount - 1] else { return nil }
        return withoutGradients { predictor.predictionEntropy(fromHidden: last) }
    }

    /// (r, c) of `Familiarity` at every position of `tokens`; nil without familiarity gates.
    func familiarity(_ tokens: TokenBatch, _ states: [Int: Tensor]) -> [Familiarity.Reading]? {
        guard readsFamiliarity, let predictor, let last = states[model.layerCount - 1] else { return nil }
        return withoutGradients { Familiarity.read(tokens, lastHidden: last, predictor: predictor) }
    }

    /// Cross-attention keys and values (and the gates' signals) of new augment states for `tokens`
    /// into the bridge caches and the familiarity tracker.
    func store(_ states: [Int: Tensor], tokens: [Int], into caches: [BridgeCache], familiarity: FamiliarityTracker?) {
        if let familiarity, let predictor, let last = states[model.layerCount - 1] {
            withoutGradients { familiarity.read(tokens, lastHidden: last, predictor: predictor) }
        }
        let entropy = self.entropy(states)
        for (bridge, cache) in zip(bridges, caches) {
            guard let augmentStates = states[bridge.connection.augmentLayer] else { continue }
            let (k, v) = bridge.keysValues(augmentStates, startPosition: cache.length)
            cache.store(keys: k, values: v, entropy: entropy)
        }
    }
}

/// Gate values recorded during a forward pass, keyed by (augment index, connection index),
/// each `B · T` values in row-major order.
public typealias GateRecord = [GateKey: [Float]]

public struct GateKey: Hashable, Sendable {
    public let augment: Int
    public let connection: Int
}

/// A frozen anchor LM composed with frozen augments through learned bridges (CALM), with one
/// gated bridge stack per augment.
public final class ComposedModel {
    public let anchor: TransformerLM
    public let augments: [AugmentSlot]
    public let heads: Int
    /// Whether bridge queries and keys carry rotary position embeddings.
    public let rotaryBridges: Bool
    /// Whether every gate also reads its augment's prediction entropy.
    public let confidenceGates: Bool
    /// Whether every gate also reads how surprised its augment was by the text (`Familiarity`).
    public let familiarityGates: Bool
    /// anchor layer -> the bridges that add into its output, as (augment, bridge) indices.
    let bridgesByAnchorLayer: [Int: [(augment: Int, bridge: Int)]]

    /// - augments: name, frozen model and connections for each augment.
    /// - heads: cross-attention heads (default: the anchor's).
    /// - confidenceGates: gates read each augment's prediction entropy (every augment must be a
    ///   `CausalLanguageModel`).
    /// - familiarityGates: gates read how surprised each augment was by the text (the same).
    /// - weights: the bridges' weights, fresh (`RandomWeights`) or stored (`CheckpointWeights`).
    /// Anchor and augments are frozen here, once.
    public init(anchor: TransformerLM, augments specs: [(name: String, model: any AugmentModel, connections: [Connection])],
                heads: Int? = nil, rotaryBridges: Bool = true, confidenceGates: Bool = false,
                familiarityGates: Bool = false, weights: inout some WeightSource) throws {
        guard !specs.isEmpty else { throw ConnectionError("a composition needs at least one augment") }
        let width = anchor.config.hiddenSize
        let heads = heads ?? anchor.config.numHeads
        guard heads > 0, width % heads == 0 else {
            throw ConnectionError("cross-attention heads \(heads) must divide the anchor width \(width)")
        }
        self.anchor = anchor
        self.heads = heads
        self.rotaryBridges = rotaryBridges
        self.confidenceGates = confidenceGates
        self.familiarityGates = familiarityGates
        let readsPredictions = confidenceGates || familiarityGates
        var slots: [AugmentSlot] = []
        var byLayer: [Int: [(augment: Int, bridge: Int)]] = [:]
        for (i, spec) in specs.enumerated() {
            try ConnectionRule.validate(spec.connections, anchorLayers: anchor.config.numLayers, augmentLayers: spec.model.layerCount)
            let predictor = spec.model as? any CausalLanguageModel
            if readsPredictions && predictor == nil {
                throw ConnectionError("\(confidenceGates ? "confidence" : "familiarity") gates need experts that predict tokens; \(spec.name) does not")
            }
            let bridges = try spec.connections.enumerated().map { j, connection in
                try Bridge("augments.\(i).connections.\(j)", connection: connection,
                           augmentWidth: spec.model.outputWidth(ofLayer: connection.augmentLayer), anchorWidth: width,
                           heads: heads, rotary: rotaryBridges, confidence: confidenceGates, familiarity: familiarityGates,
                           weights: &weights)
            }
            for (j, c) in spec.connections.enumerated() { byLayer[c.anchorLayer, default: []].append((i, j)) }
            spec.model.freeze()
            slots.append(AugmentSlot(name: spec.name, model: spec.model, bridges: bridges,
                                     predictor: readsPredictions ? predictor : nil, readsConfidence: confidenceGates,
                                     readsFamiliarity: familiarityGates))
        }
        anchor.setTrainable(false)
        augments = slots
        bridgesByAnchorLayer = byLayer
    }

    /// A fresh composition whose bridges are drawn from `seed`.
    public convenience init(anchor: TransformerLM, augments specs: [(name: String, model: any AugmentModel, connections: [Connection])],
                            heads: Int? = nil, rotaryBridges: Bool = true, confidenceGates: Bool = false,
                            familiarityGates: Bool = false, seed: UInt64 = 0) throws {
        var weights = RandomWeights(seed: seed)
        try self.init(anchor: anchor, augments: specs, heads: heads, rotaryBridges: rotaryBridges, confidenceGates: confidenceGates,
                      familiarityGates: familiarityGates, weights: &weights)
    }

    /// Only the bridges train.
    public var parameters: NamedParameters {
        augments.enumerated().flatMap { i, slot in
            slot.bridges.enumerated().flatMap { j, bridge in bridge.parameters("augments.\(i).connections.\(j)") }
        }
    }

    public var maxContext: Int { min(anchor.config.maxPositions, augments.map(\.model.maxContext).min() ?? .max) }

    // MARK: Training / full-sequence path

    /// Each augment's connected block outputs for `tokens` (frozen, computed without gradients).
    /// They depend only on the tokens, so callers may compute them once and reuse them.
    public func augmentStates(_ tokens: TokenBatch) -> [[Int: Tensor]] {
        augments.map { $0.model.hiddenStates(tokens, layers: $0.layers) }
    }

    /// The anchor block that the lowest bridge feeds.
    public var lowestConnectedLayer: Int { bridgesByAnchorLayer.keys.min() ?? 0 }

    /// The frozen anchor's output of `lowestConnectedLayer` (before any bridge): it depends
    /// only on the tokens, so it can be computed once per example and reused every epoch.
    public func frozenAnchorPrefix(_ tokens: TokenBatch) -> (layer: Int, hidden: Tensor) {
        let layer = lowestConnectedLayer
        let h = withoutGradients { anchor.forward(tokens, collect: [layer], upTo: layer).hidden[layer]! }
        return (layer, h)
    }

    /// Logits `(B, T, V)` of the composed model; pass `gates` to record every gate value.
    /// `augmentStates` and `anchorPrefix` may come from earlier calls for the same tokens.
    public func forward(_ tokens: TokenBatch, augmentStates: [[Int: Tensor]]? = nil,
                        anchorPrefix: (layer: Int, hidden: Tensor)? = nil, gates: GateRecorder? = nil) -> Tensor {
        anchor.logits(fromHidden: finalHidden(tokens, augmentStates: augmentStates, anchorPrefix: anchorPrefix, gates: gates))
    }

    /// Output of the anchor's last block `(B, T, C)`, with every bridge applied.
    public func finalHidden(_ tokens: TokenBatch, augmentStates: [[Int: Tensor]]? = nil,
                            anchorPrefix: (layer: Int, hidden: Tensor)? = nil, gates: GateRecorder? = nil) -> Tensor {
        bridgedHidden(tokens, upTo: anchor.config.numLayers - 1, augmentStates: augmentStates, anchorPrefix: anchorPrefix,
                      gates: gates)
    }

    /// The anchor block that the highest bridge feeds.
    public var highestConnectedLayer: Int { bridgesByAnchorLayer.keys.max() ?? 0 }

    /// Records every gate value for `tokens` into `gates`, running the anchor only as far as
    /// its highest bridge (no later blocks, no output projection).
    public func recordGates(_ tokens: TokenBatch, augmentStates: [[Int: Tensor]]? = nil,
                            anchorPrefix: (layer: Int, hidden: Tensor)? = nil, into gates: GateRecorder) {
        _ = bridgedHidden(tokens, upTo: highestConnectedLayer, augmentStates: augmentStates, anchorPrefix: anchorPrefix,
                          gates: gates)
    }

    /// Output of anchor block `last` `(B, T, C)`, with the bridges up to it applied.
    private func bridgedHidden(_ tokens: TokenBatch, upTo last: Int, augmentStates: [[Int: Tensor]]?,
                               anchorPrefix: (layer: Int, hidden: Tensor)?, gates: GateRecorder?) -> Tensor {
        let states = augmentStates ?? self.augmentStates(tokens)
        // Keys/values of every bridge and each augment's gate signals, computed once per forward.
        let keysValues = augments.indices.map { i in
            augments[i].bridges.map { $0.keysValues(states[i][$0.connection.augmentLayer]!) }
        }
        let signals = Self.gateSignals(entropies: augments.indices.map { augments[$0].entropy(states[$0]) },
                                       familiarity: augments.indices.map { augments[$0].familiarity(tokens, states[$0]) },
                                       shape: [tokens.batch, tokens.length])
        return anchor.forward(tokens, collect: [last], upTo: last, prefix: anchorPrefix) { layer, h in
            guard let targets = self.bridgesByAnchorLayer[layer] else { return h }
            var out = h
            for (i, j) in targets {
                let gate: Tensor
                (out, gate) = self.augments[i].bridges[j].adding(
                    to: out, anchorStates: h, keys: keysValues[i][j].keys, values: keysValues[i][j].values,
                    signals: signals[i])
                gates?.record(GateKey(augment: i, connection: j), gate)
            }
            return out
        }.hidden[last]!
    }

    /// Each augment's confidence features `(B, T, 2)` from the augments' prediction entropies
    /// `(B, T, 1)`: its own entropy, and how far it exceeds the lowest of them (0 for the surest).
    static func confidenceFeatures(_ entropies: [Tensor?]) -> [Tensor?] {
        let shape = entropies.lazy.compactMap { $0 }.first.map { Array($0.shape.dropLast()) } ?? []  // (B, T)
        let values = entropies.map { $0?.data }
        return pairsWithExcess(own: values, compared: values, shape: shape)
    }

    /// Per augment, features `shape + [2]`: its own value at each position and how far its
    /// compared value there exceeds the lowest of all augments' (0 for the lowest); nil stays nil.
    static func pairsWithExcess(own: [[Float]?], compared: [[Float]?], shape: [Int]) -> [Tensor?] {
        let present = compared.compactMap { $0 }
        guard var lowest = present.first else { return own.map { _ in nil } }
        for c in present.dropFirst() { for k in lowest.indices { lowest[k] = min(lowest[k], c[k]) } }
        return zip(own, compared).map { own, compared in
            guard let own, let compared else { return nil }
            return Tensor(shape: shape + [2], data: own.indices.flatMap { k in [own[k], compared[k] - lowest[k]] })
        }
    }

    /// Each augment's gate signals from the augments' prediction entropies `(B, T, 1)` and
    /// familiarity values (r, c) at the same `shape` (B, T) positions.
    static func gateSignals(entropies: [Tensor?], familiarity: [[Familiarity.Reading]?], shape: [Int]) -> [GateSignals] {
        zip(confidenceFeatures(entropies), Familiarity.features(familiarity, shape: shape)).map {
            GateSignals(confidence: $0, familiarity: $1)
        }
    }

    /// Gate signals at the newest positions `T` of a decoded sequence.
    func gateSignals(_ state: CompositionState, newPositions t: Int) -> [GateSignals] {
        Self.gateSignals(entropies: state.bridgeCaches.map { $0.first?.newEntropy },
                         familiarity: state.familiarity.map { $0?.newest }, shape: [1, t])
    }

    /// Mean next-token loss on the masked targets (see `TransformerLM.loss`); the output
    /// projection runs on scored positions only.
    public func loss(_ tokens: TokenBatch, lossMask: [Bool]?, augmentStates: [[Int: Tensor]]? = nil,
                     anchorPrefix: (layer: Int, hidden: Tensor)? = nil) -> Tensor {
        anchor.loss(finalHidden: finalHidden(tokens, augmentStates: augmentStates, anchorPrefix: anchorPrefix),
                    tokens: tokens, lossMask: lossMask)
    }
}

/// Collects gate values during forward passes.
public final class GateRecorder {
    public private(set) var values: GateRecord = [:]
    public init() {}
    func record(_ key: GateKey, _ gate: Tensor) { values[key, default: []] += gate.data }
    public func reset() { values = [:] }
}

// MARK: Incremental decoding

/// Decoding state of one composed sequence: the anchor's KV cache, each augment's own
/// decoder, and one cross-attention cache per bridge.
public final class CompositionState {
    let anchorCache: KVCache
    let augmentDecoders: [any AugmentDecoder]
    /// `bridgeCaches[augment][connection]`.
    let bridgeCaches: [[BridgeCache]]
    /// Per augment, with familiarity gates.
    let familiarity: [FamiliarityTracker?]

    init(anchorCache: KVCache, augmentDecoders: [any AugmentDecoder], bridgeCaches: [[BridgeCache]], familiarity: [FamiliarityTracker?]) {
        self.anchorCache = anchorCache
        self.augmentDecoders = augmentDecoders
        self.bridgeCaches = bridgeCaches
        self.familiarity = familiarity
    }
}

extension ComposedModel: IncrementalDecoder {
    public var vocabularySize: Int { anchor.config.vocabSize }

    public func startDecoding(capacity requested: Int) -> CompositionState {
        let capacity = min(requested, maxContext)
        return CompositionState(
            anchorCache: anchor.makeCache(batch: 1, capacity: capacity),
            augmentDecoders: augments.map { $0.model.makeDecoder(capacity: capacity) },
            bridgeCaches: augments.map { slot in
                slot.bridges.map { _ in BridgeCache(capacity: capacity, heads: heads, headDim: anchor.config.hiddenSize / heads) }
            },
            familiarity: augments.map { $0.readsFamiliarity ? FamiliarityTracker() : nil })
    }

    /// Every new token goes to every model (paper §3.1): augments first, whose new states
    /// extend the cross-attention caches, then the anchor with its bridges.
    public func feed(_ tokens: [Int], state: CompositionState) -> [Float] {
        feed(tokens, state: state, gates: nil)
    }

    public func feed(_ tokens: [Int], state: CompositionState, gates: GateRecorder?) -> [Float] {
        withoutGradients {
            let batch = TokenBatch(tokens)
            for (i, slot) in augments.enumerated() {
                slot.store(state.augmentDecoders[i].hiddenStates(batch, layers: slot.layers), tokens: tokens,
                           into: state.bridgeCaches[i], familiarity: state.familiarity[i])
            }
            let signals = gateSignals(state, newPositions: tokens.count)
            let logits = anchor.lastPositionLogits(batch, cache: state.anchorCache) { layer, h in
                guard let targets = self.bridgesByAnchorLayer[layer] else { return h }
                var out = h
                for (i, j) in targets {
                    let gate: Tensor
                    (out, gate) = self.augments[i].bridges[j].cachedAdding(
                        to: out, anchorStates: h, cache: state.bridgeCaches[i][j], signals: signals[i])
                    gates?.record(GateKey(augment: i, connection: j), gate)
                }
                return out
            }
            for cache in state.bridgeCaches.joined() { cache.advance(by: tokens.count) }
            return logits
        }
    }
}
