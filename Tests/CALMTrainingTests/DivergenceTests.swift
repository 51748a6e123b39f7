import CALMModels
import CALMTensor
import CALMTokenizers
import CALMTraining
import Testing

@Suite("Divergence")
struct DivergenceTests {
    /// A two-block model and its character data, the same for both tests.
    func setup() throws -> (model: TransformerLM, data: TrainingData) {
        let tokenizer = CharTokenizer(corpus: TrainingTests.corpus)
        let model = try TransformerLM(config: .llama(vocabSize: tokenizer.vocabularySize, hiddenSize: 32, numLayers: 2,
                                                     numHeads: 4, intermediateSize: 64, maxPositions: 33), seed: 1)
        model.setTrainable(true)
        return (model, TrainingData.fromText(TrainingTests.corpus, tokenizer: tokenizer, sequenceLength: 32))
    }

    /// A learning rate far too high drives the loss above where it started: the run stops with
    /// an error naming the step and the learning rate, and no save happens from then on.
    @Test func aDivergingRunStopsBeforeSaving() throws {
        let (model, data) = try setup()
        var options = TrainingOptions()
        options.steps = 40
        options.batchSize = 8
        // A rate that rises from nothing over the first steps: the check's starting mean is
        // the model's own loss, and the rise past it is unmistakable (with the full rate from
        // step 1 the starting mean itself already holds exploded losses, and whether the later
        // ones reach 1.5x of it is chance).
        options.learningRate = 3
        options.warmupSteps = 20
        options.gradientClip = 0
        options.saveEvery = 1
        let trainer = try Trainer(parameters: model.parameters, train: data, eval: nil, padID: 0, options: options) {
            model.loss($0, lossMask: $1)
        }
        var saves = 0
        #expect { try trainer.run { _ in saves += 1 } } throws: { "\($0)".contains("training diverged at step") && "\($0)".contains("--lr") }
        #expect(saves == trainer.progress.step)
        #expect(trainer.progress.step < options.steps)
    }

    /// Ordinary training (the same model at a sensible rate) never trips the check.
    @Test func ordinaryTrainingIsNotStopped() throws {
        let (model, data) = try setup()
        var options = TrainingOptions()
        options.steps = 60
        options.batchSize = 8
        options.learningRate = 1e-2
        let trainer = try Trainer(parameters: model.parameters, train: data, eval: nil, padID: 0, options: options) {
            model.loss($0, lossMask: $1)
        }
        try trainer.run()
        #expect(trainer.progress.step == 60)
    }

    /// Batches of different difficulty around a low starting loss (a composition that starts as a
    /// relay) are noise; a loss that climbs several times over and by nats is divergence.
    @Test func noisyLowLossesAreNotDivergence() {
        var check = DivergenceCheck()
        let noisy: [Float] = [0.32, 0.9, 0.4, 0.6, 1.1, 0.3, 0.5, 1.3, 0.3, 0.9, 0.8, 0.4]
        #expect(noisy.allSatisfy { check.record($0) == nil })
        var climbing = DivergenceCheck()
        let outcome = [Float]([2.9, 3.0, 2.8, 3.1, 5, 8, 11, 11]).map { climbing.record($0) }
        #expect(outcome.prefix(5).allSatisfy { $0 == nil })
        #expect(outcome[5].map { abs($0.mean - 4.725) < 1e-4 && abs($0.start - 2.95) < 1e-5 } == true)
    }
}
