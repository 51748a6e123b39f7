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

    private func entry(_ index: Int) -> (augments: [[Int: Tensor]], prefix: Tensor) {
        if let cached = entries[index] {
            hits += 1
            return cached
        }
        misses += 1
        let tokens = TokenBatch(examples[index].ids)
        let value = (model.augmentStates(tokens), model.frozenAnchorPrefix(tokens).hidden)
        entries[index] = value
        return value
    }

    /// Batch tensors for `indices`, right-padded with zeros to `length` like the token batch.
    /// Padding sits after every real token, so causal attention keeps it out of real positions.
    public func batch(_ indices: [Int], length: Int) -> (augmentStates: [[Int: Tensor]], anchorPrefix: (layer: Int, hidden: Tensor)) {
        let parts = indices.map(entry)
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
