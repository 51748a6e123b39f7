import CALMModels
import CALMTensor
import CALMTokenizers

/// Linear probes on an expert: can a value be read off its hidden state at a key's position?
///
/// For every key, the expert reads `<other> + <key> - <other> =` and its block outputs at the
/// key's token are collected. A softmax-regression probe (LayerNorm, then linear) is trained on
/// the states of the held-in keys to predict the value, and scored on the held-out keys. A
/// bridge reads a block's states through projections of just this kind, so a layer whose probe
/// generalises is a good augment layer to connect.
public enum KVProbe {
    public struct Result: Sendable {
        public var layer: Int
        /// Held-out accuracy when the probe reads the key's own position.
        public var atKey: Double
        /// ...and the position right after the key.
        public var afterKey: Double
    }

    public static func run(model: TransformerLM, tokenizer: any Tokenizer, map: KVMap, steps: Int = 300) -> [Result] {
        let keys = map.keys.keys.sorted()
        let heldIn = Set(map.heldIn)
        let values = Array(Set(map.keys.values)).sorted()
        let label = Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, $0) })
        let layers = Array(0..<model.config.numLayers)
        let width = model.config.hiddenSize
        // (layer, offset) -> features per key
        var features: [[[[Float]]]] = Array(repeating: [[], []], count: layers.count)
        var position = 0
        for (i, key) in keys.enumerated() {
            let other = keys[(i * 7 + 3) % keys.count]
            let prefix = tokenizer.encodeWithBOS("\(other) +")
            let ids = prefix + tokenizer.encode(" \(key) - \(other) =")
            position = prefix.count  // the key's token
            let states = withoutGradients { model.forward(TokenBatch(ids), collect: Set(layers), upTo: layers.last!).hidden }
            for layer in layers {
                let h = states[layer]!.data
                for offset in 0..<2 {
                    let p = position + offset
                    features[layer][offset].append(Array(h[(p * width)..<((p + 1) * width)]))
                }
            }
        }
        let trainIndex = keys.indices.filter { heldIn.contains(keys[$0]) }
        let testIndex = keys.indices.filter { !heldIn.contains(keys[$0]) }
        let labels = keys.map { label[map.keys[$0]!]! }
        func probe(_ f: [[Float]]) -> Double {
            let norm = Tensor(filling: 1, shape: [width])
            let x = Tensor(shape: [trainIndex.count, width], data: Array(trainIndex.map { f[$0] }.joined()))
                .layerNorm(weight: norm, bias: nil, eps: 1e-5)
            let w = Tensor(zeros: [values.count, width], requiresGrad: true), b = Tensor(zeros: [values.count], requiresGrad: true)
            let optimizer = AdamW(parameters: [("w", w), ("b", b)], hyper: .init(weightDecay: 0))
            for _ in 0..<steps {
                optimizer.zeroGradients()
                x.linear(w, bias: b).crossEntropy(targets: trainIndex.map { labels[$0] }).backward()
                optimizer.step(learningRate: 0.05)
            }
            let test = Tensor(shape: [testIndex.count, width], data: Array(testIndex.map { f[$0] }.joined()))
            let logits = withoutGradients { test.layerNorm(weight: norm, bias: nil, eps: 1e-5).linear(w, bias: b) }
            let correct = testIndex.indices.filter { r in
                Sampler.argmax(Array(logits.data[(r * values.count)..<((r + 1) * values.count)])) == labels[testIndex[r]]
            }.count
            return Double(correct) / Double(max(testIndex.count, 1))
        }
        return layers.map { Result(layer: $0, atKey: probe(features[$0][0]), afterKey: probe(features[$0][1])) }
    }
}
