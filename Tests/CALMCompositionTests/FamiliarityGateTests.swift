@testable import CALMComposition
import CALMModels
import CALMTensor
import Foundation
import Testing

/// Gates that also read how surprised each expert was by the text (`calm compose --familiarity-gates`);
/// ConfidenceGateTests covers the refusal of experts that predict nothing and the checkpoint.
@Suite("Familiarity gates")
struct FamiliarityGateTests {
    static let tokens = TokenBatch(ids: [1, 5, 6, 7, 8, 9, 1, 10, 12, 14, 4, 0], batch: 2, length: 6)

    static func composition(confidence: Bool = false) throws -> ComposedModel {
        let augments: [(name: String, model: any AugmentModel, connections: [Connection])] = [
            ("a", try tinyLM(width: 16, layers: 3, heads: 2, seed: 2), [Connection(anchorLayer: 1, augmentLayer: 1), Connection(anchorLayer: 3, augmentLayer: 2)]),
            ("b", try tinyLM(width: 24, layers: 2, heads: 3, seed: 3, architecture: "gpt2"), [Connection(anchorLayer: 2, augmentLayer: 0)]),
        ]
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: augments, confidenceGates: confidence, familiarityGates: true)
        randomizeOutputs(model)
        var g = SeededGenerator(seed: 9)
        for (name, tensor) in model.parameters where name.hasSuffix("gate_familiarity.weight") || name.hasSuffix("gate_confidence.weight") {
            for i in 0..<tensor.count { tensor.data[i] = 0.3 * g.nextNormal() }
        }
        return model
    }

    /// (r, c) of the expert at every position, from its own full forward pass, in Double:
    /// s_t = min(-log p(x_t | x_<t), 10), s_0 = 0, r_t = r_(t-1) / 2 + s_t / 2, c_t = c_(t-1) + s_t;
    /// the gate at t reads (r_(t-1), c_t), with r_(-1) = 0.
    static func expertFamiliarity(_ expert: TransformerLM, _ tokens: TokenBatch) -> (recent: [Double], total: [Double], capped: Int) {
        let logits = withoutGradients { expert.forward(tokens).logits! }
        let v = logits.lastDim
        var recent: [Double] = [], total: [Double] = [], capped = 0
        for b in 0..<tokens.batch {
            var r = 0.0, c = 0.0
            for t in 0..<tokens.length {
                var s = 0.0
                if t > 0 {
                    let row = (b * tokens.length + t - 1) * v
                    let x = logits.data[row..<(row + v)].map(Double.init)
                    let m = x.max()!
                    let lse = m + log(x.reduce(0) { $0 + exp($1 - m) })
                    s = lse - x[tokens.ids[b * tokens.length + t]]
                    if s > 10 { capped += 1 }
                    s = min(s, 10)
                }
                recent.append(r)
                r = r / 2 + s / 2
                c += s
                total.append(c)
            }
        }
        return (recent, total, capped)
    }

    /// With every other gate input at zero, the gate at each position is sigmoid(f₁ · r + f₂ ·
    /// (c − the lowest c of both experts)), from each expert's own predictions of the tokens read.
    @Test func theGateReadsEachExpertsSurprisalAtTheTokensRead() throws {
        let model = try Self.composition()
        let (f1, f2): (Float, Float) = (-0.6, 0.9)
        for (name, tensor) in model.parameters where name.contains(".gate") {
            let familiarity = name.hasSuffix("gate_familiarity.weight")
            for i in 0..<tensor.count { tensor.data[i] = familiarity ? [f1, f2][i] : 0 }
        }
        // Sharpen expert a's predictions until some of its surprisals pass the cap.
        let a = try #require(model.augments[0].model as? TransformerLM), b = try #require(model.augments[1].model as? TransformerLM)
        for i in 0..<a.finalNorm.weight.count { a.finalNorm.weight.data[i] *= 40 }
        let values = [Self.expertFamiliarity(a, Self.tokens), Self.expertFamiliarity(b, Self.tokens)]
        #expect(values[0].capped > 0 && values[0].capped < 10, "capped \(values[0].capped) of 10")
        let lowest = zip(values[0].total, values[1].total).map { min($0, $1) }
        #expect(zip(values[0].total, values[1].total).contains { $0 < $1 } && zip(values[0].total, values[1].total).contains { $0 > $1 })
        let recorder = GateRecorder()
        _ = withoutGradients { model.forward(Self.tokens, gates: recorder) }
        #expect(recorder.values.count == 3)
        for (key, gates) in recorder.values {
            let v = values[key.augment]
            #expect(gates.count == v.total.count)
            for (k, g) in gates.enumerated() {
                let logit = Double(f1) * v.recent[k] + Double(f2) * (v.total[k] - lowest[k])
                #expect(abs(Double(g) - 1 / (1 + exp(-logit))) < 1e-4, "gate \(key) at \(k)")
            }
        }
    }

    @Test func bridgeGradientsMatchFiniteDifferences() throws {
        let model = try Self.composition(confidence: true)
        #expect(model.parameters.filter { $0.name.hasSuffix("gate_familiarity.weight") }.count == 3)
        expectBridgeGradientsMatchFiniteDifferences(model)
    }

    /// The running surprisal carries across fed chunks: the first token of a chunk is scored
    /// against the prediction of the previous chunk's last position.
    @Test func cachedAndBatchedDecodingEqualTheFullForward() throws {
        expectDecodingEqualsTheFullForward(try Self.composition(confidence: true))
    }

    /// Surprisal is capped; a token the expert never predicts (+inf) adds the cap to c and leaves
    /// r unchanged; a reading holds r before the token and c after it; the running values carry
    /// from one call to the next.
    @Test func runningValuesCapSurprisalAndSkipUnpredictableTokensInR() {
        var running = Familiarity.Reading()
        let first = Familiarity.advance(&running, surprisal: [0, 4, .infinity, 30])
        let second = Familiarity.advance(&running, surprisal: [2])
        let expected: [(recent: Float, total: Float)] = [(0, 0), (0, 4), (2, 14), (2, 24), (6, 26)]
        for (got, want) in zip(first + second, expected) {
            #expect(abs(got.recent - want.recent) < 1e-6 && abs(got.total - want.total) < 1e-6, "\(got) vs \(want)")
        }
    }
}
