import ArgumentParser
import CALMTraining

/// Optimisation flags shared by `pretrain` and `compose`. All optional: nil means "not given",
/// so with --resume the checkpoint's saved values apply and only explicit values that
/// disagree with them are refused.
struct TrainingFlags: ParsableArguments {
    @Option(parsing: .unconditional, help: "Optimizer steps (default: 1000; with --resume: the step to continue to).")
    var steps: Int?
    @Option(parsing: .unconditional, help: "Sequences per batch (default: 16).") var batchSize: Int?
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Peak learning rate (default: 0.003).") var learningRate: Float?
    @Option(parsing: .unconditional, help: """
        Linear warm-up steps (default: 50), at most 10% of --steps so that short runs still decay \
        the learning rate (a note says when it is shortened).
        """)
    var warmup: Int?
    @Option(parsing: .unconditional, help: "Final learning rate as a fraction of the peak, cosine decay (default: 0.1).")
    var minLrRatio: Float?
    @Option(parsing: .unconditional, help: "AdamW decoupled weight decay (default: 0.1).") var weightDecay: Float?
    @Option(parsing: .unconditional, help: "Clip the global gradient norm to this value, 0: off (default: 1).") var clip: Float?
    @Option(parsing: .unconditional, help: "Seed for initialisation and data order (default: 0).") var seed: UInt64?
    @Option(parsing: .unconditional, help: "Evaluate every N steps, 0: at the end only (default: 0).") var evalEvery: Int?
    @Option(parsing: .unconditional, help: "Save a resumable checkpoint every N steps, 0: at the end only (default: 0).")
    var saveEvery: Int?
    @Option(parsing: .unconditional, help: "Log every N steps when not on a terminal (default: 10).") var logEvery: Int?

    /// Longest warm-up as a fraction of the run: a warm-up as long as the run would end it at
    /// the peak rate without any decay (e.g. the default 50 with --steps 30).
    static let maxWarmupFraction = 0.1

    static func clampedWarmup(_ warmup: Int, steps: Int) -> Int {
        min(warmup, Int(Double(steps) * maxWarmupFraction))
    }

    /// Range checks (one-line errors naming the option); `minimumSteps` is 0 where a command
    /// gives --steps 0 a meaning.
    func checkRanges(minimumSteps: Int) throws {
        try OptionCheck.atLeast(steps, minimumSteps, "--steps")
        try OptionCheck.atLeast(batchSize, 1, "--batch-size")
        try OptionCheck.finite(learningRate, "--lr")
        try OptionCheck.positive(learningRate, "--lr")
        try OptionCheck.atLeast(warmup, 0, "--warmup")
        try OptionCheck.within(minLrRatio, 0...1, "--min-lr-ratio")
        try OptionCheck.atLeast(weightDecay, 0, "--weight-decay")
        try OptionCheck.atLeast(clip, 0, "--clip")
        try OptionCheck.atLeast(evalEvery, 0, "--eval-every")
        try OptionCheck.atLeast(saveEvery, 0, "--save-every")
        try OptionCheck.atLeast(logEvery, 1, "--log-every")
    }

    /// Options for a new run: given values over the defaults, warm-up clamped (see
    /// `warmupNote`).
    func newRunOptions() -> TrainingOptions {
        var o = TrainingOptions()
        o.steps = steps ?? o.steps
        o.batchSize = batchSize ?? o.batchSize
        o.learningRate = learningRate ?? o.learningRate
        o.minLearningRateRatio = minLrRatio ?? o.minLearningRateRatio
        o.weightDecay = weightDecay ?? o.weightDecay
        o.gradientClip = clip ?? o.gradientClip
        o.seed = seed ?? o.seed
        o.evalEvery = evalEvery ?? o.evalEvery
        o.saveEvery = saveEvery ?? o.saveEvery
        o.logEvery = logEvery ?? o.logEvery
        o.warmupSteps = Self.clampedWarmup(warmup ?? o.warmupSteps, steps: o.steps)
        return o
    }

    /// Tells the user the warm-up was shortened; commands print it when training starts, so
    /// it never precedes an error about something else.
    func warmupNote(for options: TrainingOptions) -> String? {
        let requested = warmup ?? TrainingOptions().warmupSteps
        guard options.warmupSteps < requested, options.steps > 0 else { return nil }
        return "warm-up shortened from \(requested) to \(options.warmupSteps) steps (at most 10% of --steps \(options.steps))"
    }

    /// For --resume: the saved options with --steps replaced when given. Any other option
    /// given explicitly must match the saved value (the run continues as it started); the
    /// error names the option and both values.
    func resumed(from saved: TrainingOptions, source: String) throws -> TrainingOptions {
        func same<T: Equatable>(_ given: T?, _ actual: T, _ option: String) throws {
            if let given, given != actual {
                throw CLIError("\(option) \(given) conflicts with \(actual) in \(source); a resumed run keeps its training options, leave \(option) out")
            }
        }
        try same(batchSize, saved.batchSize, "--batch-size")
        try same(learningRate, saved.learningRate, "--lr")
        // The saved warm-up is already clamped to the first run's steps.
        if let warmup, Self.clampedWarmup(warmup, steps: saved.steps) != saved.warmupSteps {
            throw CLIError("--warmup \(warmup) conflicts with \(saved.warmupSteps) in \(source); a resumed run keeps its training options, leave --warmup out")
        }
        try same(minLrRatio, saved.minLearningRateRatio, "--min-lr-ratio")
        try same(weightDecay, saved.weightDecay, "--weight-decay")
        try same(clip, saved.gradientClip, "--clip")
        try same(seed, saved.seed, "--seed")
        try same(evalEvery, saved.evalEvery, "--eval-every")
        try same(saveEvery, saved.saveEvery, "--save-every")
        try same(logEvery, saved.logEvery, "--log-every")
        var options = saved
        options.steps = steps ?? saved.steps
        return options
    }
}
