import CALMModels
import CALMTensor

/// One sequence in a batched decoding step over a shared anchor: a sequence of the anchor
/// alone, or one of any composition built on that anchor (each with its own caches).
public enum AnchorSequence {
    case plain(KVCache)
    case composed(ComposedModel, CompositionState, gates: GateRecorder?)

    var anchorCache: KVCache {
        switch self {
        case .plain(let cache): return cache
        case .composed(_, let state, _): return state.anchorCache
        }
    }
}

/// Continuous batching over compositions: one new token for each of several sequences that
/// share an anchor, whatever composition each belongs to. Every expert runs once for all the
/// rows that use it (one batched forward per expert and depth), then the anchor runs once for
/// all rows, each row's bridges adding into its own row. Caches stay per sequence, so the
/// result for every row equals feeding that sequence alone.
public enum BatchedDecoding {
    /// Feeds `tokens[b]` to `sequences[b]` and returns each row's next-token logits.
    public static func step(anchor: TransformerLM, tokens: [Int], sequences: [AnchorSequence]) -> [[Float]] {
        precondition(tokens.count == sequences.count && !tokens.isEmpty, "BatchedDecoding.step: one token per sequence")
        return withoutGradients {
            feedAugments(tokens: tokens, sequences: sequences)
            let logits = anchor.batchedStep(tokens, caches: sequences.map(\.anchorCache)) { layer, h in
                addBridges(layer: layer, hidden: h, sequences: sequences)
            }.logits!  // (B, V)
            for case .composed(_, let state, _) in sequences {
                for cache in state.bridgeCaches.joined() { cache.advance(by: 1) }
            }
            let vocab = anchor.config.vocabSize
            return (0..<tokens.count).map { b in Array(logits.data[(b * vocab)..<((b + 1) * vocab)]) }
        }
    }

    /// Runs every augment of every composed row on its new token, grouped so that rows sharing
    /// an expert (and depth) share one batched forward, and extends the bridge caches.
    static func feedAugments(tokens: [Int], sequences: [AnchorSequence]) {
        struct GroupKey: Hashable {
            let model: ObjectIdentifier
            let layers: [Int]
        }
        // (row, augment index) pairs per group of transformer augments.
        var groups: [GroupKey: [(row: Int, augment: Int, decoder: TransformerAugmentDecoder)]] = [:]
        var groupOrder: [GroupKey] = []
        for (row, sequence) in sequences.enumerated() {
            guard case .composed(let model, let state, _) = sequence else { continue }
            for (i, slot) in model.augments.enumerated() {
                let layers = slot.layers
                guard let decoder = state.augmentDecoders[i] as? TransformerAugmentDecoder else {
                    // Another kind of augment decodes its row alone.
                    let states = state.augmentDecoders[i].hiddenStates(TokenBatch([tokens[row]]), layers: layers)
                    storeBridgeKeys(slot: slot, caches: state.bridgeCaches[i], states: states)
                    continue
                }
                let key = GroupKey(model: ObjectIdentifier(decoder.model), layers: layers.sorted())
                if groups[key] == nil { groupOrder.append(key) }
                groups[key, default: []].append((row, i, decoder))
            }
        }
        for key in groupOrder {
            let members = groups[key]!
            let decoders = members.map(\.decoder)
            let hidden = decoders[0].model.batchedStep(members.map { tokens[$0.row] }, caches: decoders.map(\.cache),
                                                       collect: Set(key.layers), upTo: key.layers.last!).hidden  // (n, 1, C) each
            for (n, member) in members.enumerated() {
                guard case .composed(let model, let state, _) = sequences[member.row] else { continue }
                let rowStates = hidden.mapValues { members.count == 1 ? $0 : $0.sliced(axis: 0, n..<(n + 1)) }  // (1, 1, C)
                storeBridgeKeys(slot: model.augments[member.augment], caches: state.bridgeCaches[member.augment], states: rowStates)
            }
        }
    }

    /// Cross-attention keys and values of one row's new augment states, into its bridge caches.
    static func storeBridgeKeys(slot: AugmentSlot, caches: [BridgeCache], states: [Int: Tensor]) {
        for (j, bridge) in slot.bridges.enumerated() {
            let (k, v) = bridge.keysValues(states[bridge.connection.augmentLayer]!, startPosition: caches[j].length)
            caches[j].store(keys: k, values: v)
        }
    }

    /// The anchor's output of `layer` `(B, 1, C)` with each composed row's bridges added to its row.
    static func addBridges(layer: Int, hidden h: Tensor, sequences: [AnchorSequence]) -> Tensor {
        var rows: [Tensor]?
        for (row, sequence) in sequences.enumerated() {
            guard case .composed(let model, let state, let gates) = sequence,
                  let targets = model.bridgesByAnchorLayer[layer] else { continue }
            if rows == nil {
                rows = sequences.count == 1 ? [h] : (0..<sequences.count).map { h.sliced(axis: 0, $0..<($0 + 1)) }
            }
            let anchorState = rows![row]  // (1, 1, C)
            var out = anchorState
            for (i, j) in targets {
                let (delta, gate) = model.augments[i].bridges[j].cachedContribution(anchorStates: anchorState,
                                                                                    cache: state.bridgeCaches[i][j])
                gates?.record(GateKey(augment: i, connection: j), gate)
                out = out.adding(delta)
            }
            rows![row] = out
        }
        guard let rows else { return h }
        return rows.count == 1 ? rows[0] : Tensor.concatenate(rows, axis: 0)
    }
}

extension ComposedModel {
    /// Every bridge's gate key with a label `expert:anchorLayer<-expertLayer`, augments in order.
    public var gateConnections: [(key: GateKey, label: String)] {
        augments.enumerated().flatMap { i, slot in
            slot.bridges.enumerated().map { j, bridge in
                (GateKey(augment: i, connection: j), "\(slot.name):\(bridge.connection.anchorLayer)<-\(bridge.connection.augmentLayer)")
            }
        }
    }
}
