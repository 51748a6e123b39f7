import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import CALMTraining
import Foundation
import Testing

@Suite("Composition training learns")
struct LearningTests {
    /// A secret letter -> digit map that only the expert was trained on.
    static let secret: [(String, String)] = Array(zip("abcdefghij".map(String.init), ["3", "7", "1", "9", "0", "4", "8", "2", "6", "5"]))

    func train(_ model: TransformerLM, _ data: TrainingData, steps: Int, lr: Float) throws {
        model.setTrainable(true)
        var o = TrainingOptions()
        o.steps = steps
        o.batchSize = 16
        o.learningRate = lr
        o.warmupSteps = 10
        let trainer = try Trainer(parameters: model.parameters, train: data, eval: nil, padID: 0, options: o) {
            model.loss($0, lossMask: $1)
        }
        try trainer.run()
        model.setTrainable(false)
    }

    @Test(arguments: [1, 2])
    func compositionSolvesWhatOnlyTheExpertKnows(augmentCount: Int) throws {
        let t = sharedTokenizer
        // Expert: learns the map as "a=3".
        let expert = try tinyLM(width: 32, layers: 2, heads: 2, seed: 11)
        try train(expert, TrainingData(examples: Self.secret.map { TrainingData.example(prompt: "\($0.0)=", completion: $0.1, tokenizer: t) }),
                  steps: 150, lr: 1e-2)
        // Anchor: learns only the output format "x + " -> " d" with digits, never the letters.
        let anchor = try tinyLM(width: 32, layers: 2, heads: 4, seed: 12)
        try train(anchor, TrainingData(examples: (0..<10).map { TrainingData.example(prompt: "\($0) +", completion: " \($0)", tokenizer: t) }),
                  steps: 80, lr: 1e-2)

        // The composed task: "a +" -> " 3".
        let task = TrainingData(examples: Self.secret.map { TrainingData.example(prompt: "\($0.0) +", completion: " \($0.1)", tokenizer: t) })
        var augments: [(name: String, model: any AugmentModel, connections: [Connection])] = [
            ("expert", expert, [Connection(anchorLayer: 0, augmentLayer: 1)]),
        ]
        if augmentCount == 2 {  // a second, unrelated expert of another width and depth
            augments.append(("other", try tinyLM(width: 16, layers: 3, heads: 2, seed: 13), [Connection(anchorLayer: 0, augmentLayer: 2)]))
        }
        let composed = try ComposedModel(anchor: anchor, augments: augments, seed: 1)
        var o = TrainingOptions()
        o.steps = 150
        o.batchSize = 10
        o.learningRate = 1e-2
        o.warmupSteps = 10
        let trainer = try Trainer(parameters: composed.parameters, train: task, eval: nil, padID: 0, options: o) {
            composed.loss($0, lossMask: $1)
        }
        let anchorLoss = withoutGradients {
            let (tokens, mask) = collate(task.examples, padID: 0)
            return anchor.loss(tokens, lossMask: mask).item
        }
        let before = trainer.evaluate(task)
        #expect(abs(before - anchorLoss) < 1e-5)  // starts as the anchor
        try trainer.run()
        let after = trainer.evaluate(task)
        #expect(after < 0.25 * anchorLoss, "anchor \(anchorLoss), composition \(after)")
        // And it answers, where neither of its parts can: greedy decoding gives the expert's digits.
        func accuracy<D: IncrementalDecoder>(_ model: D) throws -> Int {
            var correct = 0
            for (key, value) in Self.secret {
                let out = try model.generate(prompt: [t.bosID!] + t.encode("\(key) +"), maxTokens: 3, stopToken: t.eosID)
                if t.decode(out) == " \(value)" { correct += 1 }
            }
            return correct
        }
        let (calm, anchorAlone, expertAlone) = (try accuracy(composed), try accuracy(anchor), try accuracy(expert))
        #expect(calm >= 8)
        #expect(calm > anchorAlone + 4 && calm > expertAlone + 4, "CALM \(calm), anchor \(anchorAlone), expert \(expertAlone)")
    }
}
