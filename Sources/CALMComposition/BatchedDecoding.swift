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

/// Continuous batching over compositions: the new tokens of several sequences that share an
/// anchor, whatever composition each belongs to (one token each while decoding, a whole prompt
/// for a sequence that joins). Every expert runs once for all the rows that use it (one packed
/// forward per expert and depth), then the anchor runs once for all rows, each sequence's
/// bridges adding into its own rows. Caches stay per sequence, so the result for every
/// sequence equals feeding it alone.
public enum BatchedDecoding {
    /// Feeds `tokens[b]` to `sequences[b]` and returns each row's next-token logits.
    public static func step(anchor: TransformerLM, tokens: [Int], sequences: [AnchorSequence]) -> [[Float]] {
        step(anchor: anchor, feeding: tokens.map { [$0] }, sequences: sequences)
    }

    /// Feeds `tokens[b]` (a prompt, or the next token) to `sequences[b]` and returns the logits
    /// after each sequence's last new token.
    public static func step(anchor: TransformerLM, feeding tokens: [[Int]], sequences: [AnchorSequence]) -> [[Float]] {
        precondition(tokens.count == sequences.count && !tokens.isEmpty && tokens.allSatisfy { !$0.isEmpty },
                     "BatchedDecoding.step: tokens for every sequence")
        return withoutGradients {
            feedAugments(tokens: tokens, sequences: sequences)
            let spans = PackedRows(tokens).spans
            // Each composed sequence's gate signals, once per step for all its connected layers.
            let signals = zip(sequences, tokens).map { sequence, row -> [GateSignals] in
                guard case .composed(let model, let state, _) = sequence else { return [] }
                return model.gateSignals(state, newPositions: row.count)
            }
            let logits = anchor.packedStep(tokens, caches: sequences.map(\.anchorCache)) { layer, h in
                addBridges(layer: layer, hidden: h, spans: spans, sequences: sequences, signals: signals)
            }.logits!  // (B, V)
            for case (.composed(_, let state, _), let row) in zip(sequences, tokens) {
                for cache in state.bridgeCaches.joined() { cache.advance(by: row.count) }
            }
            let vocab = anchor.config.vocabSize
            return (0..<tokens.count).map { b in Array(logits.data[(b * vocab)..<((b + 1) * vocab)]) }
        }
    }

    /// Runs every augment of every composed sequence on its new tokens, grouped so that
    /// sequences sharing an expert (and depth) share one packed forward, and extends the
    /// bridge caches.
    static func feedAugments(tokens: [[Int]], sequences: [AnchorSequence]) {
        struct GroupKey: Hashable {
            let model: ObjectIdentifier
            let layers: [Int]
        }
        // (sequence, augment index) pairs per group of transformer augments.
        var groups: [GroupKey: [(row: Int, augment: Int, decoder: TransformerAugmentDecoder)]] = [:]
        var groupOrder: [GroupKey] = []
        for (row, sequence) in sequences.enumerated() {
            guard case .composed(let model, let state, _) = sequence else { continue }
            for (i, slot) in model.augments.enumerated() {
                let layers = slot.layers
                guard let decoder = state.augmentDecoders[i] as? TransformerAugmentDecoder else {
                    // Another kind of augment decodes its sequence alone.
                    slot.store(state.augmentDecoders[i].hiddenStates(TokenBatch(tokens[row]), layers: layers),
                               tokens: tokens[row], into: state.bridgeCaches[i], familiarity: state.familiarity[i])
                    continue
                }
                let key = GroupKey(model: ObjectIdentifier(decoder.model), layers: layers.sorted())
                if groups[key] == nil { groupOrder.append(key) }
                groups[key, default: []].append((row, i, decoder))
            }
        }
        for key in groupOrder {
            guard let members = groups[key], let deepest = key.layers.last else { continue }
            let decoders = members.map(\.decoder)
            let memberTokens = members.map { tokens[$0.row] }
            let hidden = decoders[0].model.packedStep(memberTokens, caches: decoders.map(\.cache), collect: Set(key.layers),
                                                      upTo: deepest).hidden  // (N, 1, C) each
            for (member, span) in zip(members, PackedRows(memberTokens).spans) {
                guard case .composed(let model, let state, _) = sequences[member.row] else { continue }
                let states = hidden.mapValues { $0.packedRows(span) }  // (1, L, C)
                model.augments[member.augment].store(states, tokens: tokens[member.row], into: state.bridgeCaches[member.augment],
                                                     familiarity: state.familiarity[member.augment])
            }
        }
    }

    /// The anchor's output of `layer` `(N, 1, C)` with each composed sequence's bridges added
    /// to its rows `spans[b]`; `signals[b]` holds sequence b's gate signals per augment.
    static func addBridges(layer: Int, hidden h: Tensor, spans: [Range<Int>], sequences: [AnchorSequence],
                           signals: [[GateSignals]]) -> Tensor {
        var rows: [Tensor]?
        for (b, sequence) in sequences.enumerated() {
            guard case .composed(let model, let state, let gates) = sequence,
                  let targets = model.bridgesByAnchorLayer[layer] else { continue }
            if rows == nil { rows = spans.map { h.packedRows($0) } }  // (1, L, C) each
            let anchorStates = rows![b]
            var out = anchorStates
            for (i, j) in targets {
                let gate: Tensor
                (out, gate) = model.augments[i].bridges[j].cachedAdding(to: out, anchorStates: anchorStates,
                                                                        cache: state.bridgeCaches[i][j],
                                                                        signals: signals[b][i])
                gates?.record(GateKey(augment: i, connection: j), gate)
            }
            rows![b] = out
        }
        guard let rows else { return h }
        return rows.count == 1 ? rows[0].unpackedRows() : Tensor.concatenate(rows.map { $0.unpackedRows() }, axis: 0)
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
