import CALMModels
import CALMTensor
import CALMTraining

/// Per-example frozen activations for composition training: each augment's connected block
/// outputs and the anchor's output at its lowest connected block. The frozen models always see
/// the same tokens for an example, so these are computed the first time an example is drawn and
/// reused in every later epoch, which removes the augments' forward passes and the anchor's
/// lower blocks from all but the first epoch.
public final class FrozenActivationCache {
    let model: ComposedModel
    let examples: [Example]
    private var entries: [Int: (augments: [[Int: Tensor]], prefix: Tensor)] = [:]
    public private(set) var hits = 0, misses = 0

    public init(model: ComposedModel, examples: [Example]) {
        self.model = model
        self.examples = examples
    }

    /// Estimated bytes to cache every example (float32).
    public static func estimatedBytes(model: ComposedModel, examples: [Example]) -> Int {
        let tokens = examples.reduce(0) { $0 + $1.ids.count }
        let width = model.anchor.config.hiddenSize + model.augments.reduce(0) { total, slot in
            total + slot.bridges.reduce(0) { $0 + slot.model.outputWidth(ofLayer: $1.connection.augmentLayer) }
        }
        return tokens * width * MemoryLayout<Float>.size
    }

    /// Computes the entries of `missing` examples in one batched pass (right-padded to the
    /// longest): one product per weight for the whole batch instead of one per example, which
    /// matters most for quantized frozen models (each product unpacks its weight once).
    /// Causal models never let padding reach a real position, so each example keeps its rows.
    private func fill(_ missing: [Int]) {
        let lengths = missing.map { examples[$0].ids.count }
        let longest = lengths.max() ?? 0
        let ids = missing.flatMap { examples[$0].ids + [Int](repeating: 0, count: longest - examples[$0].ids.count) }
        let tokens = TokenBatch(ids: ids, batch: missing.count, length: longest)
        let (augments, prefix) = withoutGradients { (model.augmentStates(tokens), model.frozenAnchorPrefix(tokens).hidden) }
        func rows(_ t: Tensor, _ b: Int) -> Tensor {  // (B, T, C) -> (1, T_b, C)
            t.sliced(axis: 0, b..<(b + 1)).sliced(axis: 1, 0..<lengths[b])
        }
        for (b, index) in missing.enumerated() {
            entries[index] = (augments.map { $0.mapValues { rows($0, b) } }, rows(prefix, b))
        }
        misses += missing.count
    }

    /// Batch tensors for `indices`, right-padded with zeros to `length` like the token batch.
    /// Padding sits after every real token, so causal attention keeps it out of real positions.
    public func batch(_ indices: [Int], length: Int) -> (augmentStates: [[Int: Tensor]], anchorPrefix: (layer: Int, hidden: Tensor)) {
        let missing = Array(Set(indices.filter { entries[$0] == nil })).sorted()
        if !missing.isEmpty { fill(missing) }
        hits += indices.count - missing.count
        let parts = indices.map { entries[$0]! }
        func stack(_ tensors: [Tensor]) -> Tensor {
            let width = tensors[0].lastDim
            var data = [Float](repeating: 0, count: tensors.count * length * width)
            for (b, t) in tensors.enumerated() {
                data.withUnsafeMutableBufferPointer { dst in
                    t.data.withUnsafeBufferPointer { src in
                        (dst.baseAddress! + b * length * width).update(from: src.baseAddress!, count: src.count)
                    }
                }
            }
            return Tensor(shape: [tensors.count, length, width], data: data)
        }
        let augments = model.augments.indices.map { i in
            Dictionary(uniqueKeysWithValues: parts[0].augments[i].keys.map { layer in
                (layer, stack(parts.map { $0.augments[i][layer]! }))
            })
        }
        return (augments, (model.lowestConnectedLayer, stack(parts.map(\.prefix))))
    }
}
