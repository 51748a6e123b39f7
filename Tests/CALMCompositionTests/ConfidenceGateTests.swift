import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import Foundation
import Testing

/// Gates that also read each expert's next-token entropy (`calm compose --confidence-gates`);
/// the refusal and checkpoint tests cover familiarity gates too.
@Suite("Confidence gates")
struct ConfidenceGateTests {
    static let tokens = TokenBatch(ids: [1, 5, 6, 7, 8, 9, 1, 10, 12, 14, 4, 0], batch: 2, length: 6)

    static func composition(experts: Int = 1) throws -> ComposedModel {
        var augments: [(name: String, model: any AugmentModel, connections: [Connection])] = [
            ("a", try tinyLM(width: 16, layers: 3, heads: 2, seed: 2), [Connection(anchorLayer: 1, augmentLayer: 1), Connection(anchorLayer: 3, augmentLayer: 2)]),
        ]
        if experts == 2 {
            augments.append(("b", try tinyLM(width: 24, layers: 2, heads: 3, seed: 3, architecture: "gpt2"), [Connection(anchorLayer: 2, augmentLayer: 0)]))
        }
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: augments, confidenceGates: true)
        randomizeOutputs(model)
        var g = SeededGenerator(seed: 9)
        for (name, tensor) in model.parameters where name.hasSuffix("gate_confidence.weight") {
            for i in 0..<tensor.count { tensor.data[i] = g.nextNormal() }
        }
        return model
    }

    /// The expert's entropy at each position, from its own full forward pass, in Double.
    static func expertEntropy(_ expert: TransformerLM, _ tokens: TokenBatch) -> [Double] {
        let logits = withoutGradients { expert.forward(tokens).logits! }
        let v = logits.lastDim
        return (0..<logits.rowCount).map { r in
            let row = logits.data[(r * v)..<((r + 1) * v)].map(Double.init)
            let m = row.max()!
            let z = row.reduce(0) { $0 + exp($1 - m) }
            return -row.reduce(0) { $0 + exp($1 - m) / z * (($1 - m) - log(z)) }
        }
    }

    /// With every other gate input at zero, the gate at each position is sigmoid(c₁ · e + c₂ ·
    /// (e − the lowest entropy of both experts)), e the entropy of its expert's prediction at that
    /// same position: even a bridge reading an inner block gets the entropy of the expert's last block.
    @Test func theGateReadsEachExpertsEntropyAndItsExcessAtTheSamePosition() throws {
        let model = try Self.composition(experts: 2)
        let (c1, c2): (Float, Float) = (0.7, -1.3)
        for (name, tensor) in model.parameters where name.contains(".gate") {
            let confidence = name.hasSuffix("gate_confidence.weight")
            for i in 0..<tensor.count { tensor.data[i] = confidence ? [c1, c2][i] : 0 }
        }
        // Sharpen expert a's predictions (random tiny models predict almost uniformly) until
        // each expert is the surer one somewhere.
        let a = try #require(model.augments[0].model as? TransformerLM), b = try #require(model.augments[1].model as? TransformerLM)
        var entropy = [Self.expertEntropy(a, Self.tokens), Self.expertEntropy(b, Self.tokens)]
        for _ in 0..<40 where !zip(entropy[0], entropy[1]).contains(where: { $0 < $1 }) {
            for i in 0..<a.finalNorm.weight.count { a.finalNorm.weight.data[i] *= 1.1 }
            entropy[0] = Self.expertEntropy(a, Self.tokens)
        }
        let lowest = zip(entropy[0], entropy[1]).map { min($0, $1) }
        #expect(Set(entropy[0].map { ($0 * 1e3).rounded() }).count > 1)  // varies, so a position mix-up would show
        #expect(zip(entropy[0], entropy[1]).contains { $0 < $1 } && zip(entropy[0], entropy[1]).contains { $0 > $1 })
        let recorder = GateRecorder()
        _ = withoutGradients { model.forward(Self.tokens, gates: recorder) }
        #expect(recorder.values.count == 3)
        for (key, gates) in recorder.values {
            let e = entropy[key.augment]
            #expect(gates.count == e.count)
            for (k, g) in gates.enumerated() {
                let logit = Double(c1) * e[k] + Double(c2) * (e[k] - lowest[k])
                #expect(abs(Double(g) - 1 / (1 + exp(-logit))) < 1e-5)
            }
        }
    }

    @Test func bridgeGradientsMatchFiniteDifferences() throws {
        let model = try Self.composition(experts: 2)
        #expect(model.parameters.filter { $0.name.hasSuffix("gate_confidence.weight") }.count == 3)
        expectBridgeGradientsMatchFiniteDifferences(model)
    }

    @Test func cachedAndBatchedDecodingEqualTheFullForward() throws {
        expectDecodingEqualsTheFullForward(try Self.composition(experts: 2))
    }

    /// Gates that read an expert's predictions (either signal) need an expert that predicts tokens.
    @Test(arguments: GateSignal.allCases)
    func anExpertThatPredictsNoTokensIsRefused(_ signal: GateSignal) throws {
        #expect {
            try ComposedModel(anchor: try tinyLM(seed: 1), augments: [("toy", try toyLM(), [Connection(anchorLayer: 1, augmentLayer: 0)])],
                              confidenceGates: signal == .confidence, familiarityGates: signal == .familiarity)
        } throws: { "\($0)".contains("\(signal.rawValue) gates need experts that predict tokens; toy does not") }
    }

    /// The flag travels in the checkpoint's spec and names its terms in the gate's formula; a
    /// spec written before it existed reads as off; familiarity gates without the lag are refused.
    @Test(arguments: GateSignal.allCases)
    func theCheckpointKeepsTheGatesAndOlderSpecsReadAsOff(_ signal: GateSignal) throws {
        let dir = try makeTemporaryDirectory()
        let anchorPath = "\(dir)/anchor.h5"
        let anchorHash = try ModelCheckpoint.save(model: try tinyLM(seed: 1), tokenizer: sharedTokenizer, to: anchorPath)
        let registry = ExpertRegistry(directory: "\(dir)/experts")
        try ModelCheckpoint.save(model: try tinyLM(width: 16, layers: 3, heads: 2, seed: 2), tokenizer: sharedTokenizer, to: "\(dir)/a.h5")
        try registry.register(file: "\(dir)/a.h5", name: "a", domain: "d")
        let (entry, expert) = try registry.load("a")
        let connections = [Connection(anchorLayer: 2, augmentLayer: 1)]
        let (confidence, familiarity) = (signal == .confidence, signal == .familiarity)
        let model = try ComposedModel(anchor: try ModelCheckpoint.load(anchorPath).model, augments: [("a", expert.model, connections)],
                                      confidenceGates: confidence, familiarityGates: familiarity)
        randomizeOutputs(model)
        for (name, tensor) in model.parameters where name.hasSuffix("gate_\(signal.rawValue).weight") { tensor.data = [-1.5, 0.5] }
        let path = "\(dir)/comp.h5"
        let spec = CompositionSpec(
            anchor: .init(path: "anchor.h5", contentHash: anchorHash, architecture: "llama"),
            augments: [.init(name: "a", contentHash: entry.contentHash, architecture: "llama", connections: connections)],
            registry: CompositionCheckpoint.reference(to: registry.directory, from: path), heads: model.heads,
            confidenceGates: confidence, familiarityGates: familiarity, seed: 0)
        try CompositionCheckpoint.save(model, spec: spec, tokenizer: sharedTokenizer, to: path)
        let reloaded = try CompositionCheckpoint.load(path)
        #expect(reloaded.model.confidenceGates == confidence && reloaded.model.familiarityGates == familiarity)
        #expect(reloaded.spec.confidenceGates == (confidence ? true : nil) && reloaded.spec.familiarityGates == (familiarity ? true : nil))
        #expect(reloaded.spec.gate.contains("entropy") == confidence && reloaded.spec.gate.contains("surprisal") == familiarity)
        #expect(withoutGradients { reloaded.model.forward(Self.tokens).data } == withoutGradients { model.forward(Self.tokens).data })

        var older = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(spec)) as? [String: Any])
        older["\(signal.rawValue)_gates"] = nil
        let decoded = try JSONDecoder().decode(CompositionSpec.self, from: JSONSerialization.data(withJSONObject: older))
        #expect(decoded.confidenceGates == nil && decoded.familiarityGates == nil)
        let plain = CompositionSpec(anchor: spec.anchor, augments: spec.augments, heads: 2, seed: 0)
        #expect(try String(decoding: JSONEncoder().encode(plain), as: UTF8.self).contains(signal.rawValue) == false)

        // Familiarity gates trained before r was read one token late are refused, naming the file.
        var unlagged = spec
        unlagged.familiarityLag = nil
        let unlaggedPath = "\(dir)/unlagged.h5"
        try CompositionCheckpoint.save(model, spec: unlagged, tokenizer: sharedTokenizer, to: unlaggedPath)
        if familiarity {
            let error = #expect(throws: CheckpointError.self) { try CompositionCheckpoint.load(unlaggedPath) }
            let message = error.map { "\($0)" } ?? ""
            #expect(message.contains(unlaggedPath) && message.contains("at the current token") && message.contains("compose it again"), "\(message)")
        } else {
            #expect(try CompositionCheckpoint.load(unlaggedPath).spec.familiarityLag == nil)
        }
    }
}

/// What a gate can read about its expert besides the models' states.
enum GateSignal: String, CaseIterable, Sendable {
    case confidence, familiarity
}
