import ArgumentParser
import CALMTraining

/// Optimisation flags shared by `pretrain` (and composition training).
struct TrainingFlags: ParsableArguments {
    @Option(help: "Optimizer steps (pretrain: 0 writes the untrained model).") var steps = 1000
    @Option(help: "Sequences per batch.") var batchSize = 16
    @Option(name: .customLong("lr"), help: "Peak learning rate.") var learningRate: Float = 3e-3
    @Option(help: "Linear warm-up steps.") var warmup = 50
    @Option(help: "Final learning rate as a fraction of the peak (cosine decay).") var minLrRatio: Float = 0.1
    @Option(help: "AdamW decoupled weight decay.") var weightDecay: Float = 0.1
    @Option(help: "Clip the global gradient norm to this value (0: off).") var clip: Float = 1.0
    @Option(help: "Seed for initialisation and data order.") var seed: UInt64 = 0
    @Option(help: "Evaluate every N steps (0: at the end only).") var evalEvery = 0
    @Option(help: "Save a resumable checkpoint every N steps (0: at the end only).") var saveEvery = 0
    @Option(help: "Log every N steps when not on a terminal.") var logEvery = 10

    var options: TrainingOptions {
        var o = TrainingOptions()
        o.steps = steps
        o.batchSize = batchSize
        o.learningRate = learningRate
        o.warmupSteps = warmup
        o.minLearningRateRatio = minLrRatio
        o.weightDecay = weightDecay
        o.gradientClip = clip
        o.seed = seed
        o.evalEvery = evalEvery
        o.saveEvery = saveEvery
        o.logEvery = logEvery
        return o
    }
}
