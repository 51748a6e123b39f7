import CALMModels
import Foundation

/// What a composition costs, next to the anchor alone and to fully fine-tuning the anchor.
/// FLOPs count 2 per multiply-add of the matrix products and attention (norms, activations
/// and the optimizer are left out: they are small at these shapes).
public struct CostReport: Codable, Sendable, Equatable {
    public var anchorParameters: Int
    public var augmentParameters: [String: Int]
    public var trainableParameters: Int
    /// Every bridge parameter, when only some train (`CompositionJob.trainableBridgeParts`).
    public var bridgeParameters: Int?
    public var trainablePercentOfAnchor: Double
    /// Sequence length the per-token figures assume.
    public var contextLength: Int
    public var trainingFLOPsPerToken: Double
    /// The same with frozen activations (augment states, anchor below the lowest bridge) cached.
    public var trainingFLOPsPerTokenCached: Double
    public var fineTuneFLOPsPerToken: Double
    public var anchorDecodeFLOPsPerToken: Double
    public var composedDecodeFLOPsPerToken: Double
    public var decodeOverheadPercent: Double
    public var residentBytes: [String: Int]

    /// `trainedParts`: the bridge parts that train (nil: all of them).
    public init(model: ComposedModel, contextLength: Int, trainedParts: Set<String>? = nil) {
        let anchor = model.anchor.config
        let T = contextLength
        let trainSpan = max(1, T / 2)  // average keys seen per query under a causal mask
        let anchorParams = model.anchor.parameterCount
        anchorParameters = anchorParams
        augmentParameters = Dictionary(model.augments.map { ($0.name, $0.model.parameterCount) }, uniquingKeysWith: { a, _ in a })
        let all = model.parameters.reduce(0) { $0 + $1.tensor.count }
        trainableParameters = trainedParts.map { parts in
            model.parameters.filter { Bridge.names($0.name, oneOf: parts) }.reduce(0) { $0 + $1.tensor.count }
        } ?? all
        bridgeParameters = trainedParts == nil ? nil : all
        trainablePercentOfAnchor = 100 * Double(trainableParameters) / Double(anchorParams)
        self.contextLength = T

        func bridgeFLOPs(span: Int) -> Double {
            model.augments.flatMap(\.bridges).reduce(0) { total, b in
                let dA = b.projection.weight.shape[1], dB = b.anchorWidth
                return total + 2 * Double(dA * dB + 4 * dB * dB + dB) + 4 * Double(span * dB)
            }
        }
        func augmentFLOPs(span: Int) -> Double {
            model.augments.reduce(0) { total, slot in
                total + slot.model.forwardFLOPsPerToken(throughLayer: slot.layers.max() ?? 0, span: span)
            }
        }
        let block = anchor.blockFLOPsPerToken(span: trainSpan)
        let anchorForward = Double(anchor.numLayers) * block + anchor.headFLOPsPerToken
        let lowest = model.bridgesByAnchorLayer.keys.min() ?? 0
        let blocksBelow = Double(lowest + 1)  // blocks up to and including the lowest connected one
        let blocksAbove = Double(anchor.numLayers) - blocksBelow
        // Backward: input gradients only through the frozen anchor above the lowest bridge
        // (about one forward), input and weight gradients for the bridges (about two forwards).
        let backward = blocksAbove * block + anchor.headFLOPsPerToken + 2 * bridgeFLOPs(span: trainSpan)
        trainingFLOPsPerToken = augmentFLOPs(span: trainSpan) + anchorForward + bridgeFLOPs(span: trainSpan) + backward
        trainingFLOPsPerTokenCached = trainingFLOPsPerToken - augmentFLOPs(span: trainSpan) - blocksBelow * block
        fineTuneFLOPsPerToken = 3 * anchorForward
        let decodeBlock = anchor.blockFLOPsPerToken(span: T)
        anchorDecodeFLOPsPerToken = Double(anchor.numLayers) * decodeBlock + anchor.headFLOPsPerToken
        composedDecodeFLOPsPerToken = anchorDecodeFLOPsPerToken + augmentFLOPs(span: T) + bridgeFLOPs(span: T)
        decodeOverheadPercent = 100 * (composedDecodeFLOPsPerToken / anchorDecodeFLOPsPerToken - 1)

        let floatBytes = MemoryLayout<Float>.size
        var resident: [String: Int] = [
            "anchor weights": model.anchor.weightBytes,
            "composition weights": (bridgeParameters ?? trainableParameters) * floatBytes,
            "anchor KV cache": 2 * anchor.numLayers * T * anchor.numKVHeads * anchor.headDim * floatBytes,
            "cross-attention caches": 2 * model.augments.reduce(0) { $0 + $1.bridges.count } * T * anchor.hiddenSize * floatBytes,
        ]
        for slot in model.augments {
            resident["augment \(slot.name) weights"] = slot.model.weightBytes
            resident["augment \(slot.name) decoding state"] = slot.model.decodingStateBytes(capacity: T)
        }
        residentBytes = resident
    }

    public var totalResidentBytes: Int { residentBytes.values.reduce(0, +) }

    /// A human-readable table.
    public func rendered() -> String {
        func flops(_ v: Double) -> String { String(format: "%.2f MFLOP", v / 1e6) }
        func mib(_ b: Int) -> String { String(format: "%.2f MiB", Double(b) / 1_048_576) }
        var lines = [
            "cost report (per token, context \(contextLength)):",
            String(format: bridgeParameters == nil ? "  trainable parameters      %d (%.2f%% of the anchor's %d)"
                                                   : "  trainable parameters      %d (%.4f%% of the anchor's %d)",
                   trainableParameters, trainablePercentOfAnchor, anchorParameters)
                + (bridgeParameters.map { "; the bridges hold \($0), the others fixed" } ?? ""),
            "  training FLOPs / token    \(flops(trainingFLOPsPerToken)) recomputing frozen models, \(flops(trainingFLOPsPerTokenCached)) with cached frozen activations",
            String(format: "  full fine-tune of anchor  %@ (CALM: %.2fx, cached %.2fx)", flops(fineTuneFLOPsPerToken),
                   trainingFLOPsPerToken / fineTuneFLOPsPerToken, trainingFLOPsPerTokenCached / fineTuneFLOPsPerToken),
            String(format: "  decoding FLOPs / token    %@ composed vs %@ anchor alone (+%.1f%%)", flops(composedDecodeFLOPsPerToken),
                   flops(anchorDecodeFLOPsPerToken), decodeOverheadPercent),
            "  resident memory           \(mib(totalResidentBytes)) in all:",
        ]
        // Names are padded to the longest (an expert's name can be long), never cut.
        let width = residentBytes.keys.map(\.count).max() ?? 0
        for (name, bytes) in residentBytes.sorted(by: { $0.key < $1.key }) {
            lines.append("    \(name)\(String(repeating: " ", count: width - name.count)) \(mib(bytes))")
        }
        return lines.joined(separator: "\n")
    }
}
