import CALMCheckpoint
import CALMModels
import CALMTensor
import Foundation

/// Optimisation settings shared by pre-training and composition training.
public struct TrainingOptions: Codable, Sendable, Equatable {
    public var steps: Int = 1000
    public var batchSize: Int = 16
    public var learningRate: Float = 3e-3
    public var warmupSteps: Int = 50
    /// Final learning rate as a fraction of the peak (cosine decay).
    public var minLearningRateRatio: Float = 0.1
    public var weightDecay: Float = 0.1
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    /// Maximum global gradient norm; 0 disables clipping.
    public var gradientClip: Float = 1.0
    public var seed: UInt64 = 0
    /// Evaluate every this many steps (0: only at the end).
    public var evalEvery: Int = 0
    /// Save a checkpoint every this many steps (0: only at the end).
    public var saveEvery: Int = 0
    public var logEvery: Int = 10

    public init() {}

    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws { if !ok { throw DataError("invalid training option: \(message)") } }
        try require(steps > 0, "steps must be positive")
        try require(batchSize > 0, "batch size must be positive")
        try require(learningRate > 0 && learningRate.isFinite, "learning rate must be positive")
        try require(warmupSteps >= 0, "warm-up steps must be >= 0")
        try require(minLearningRateRatio >= 0 && minLearningRateRatio <= 1, "min learning-rate ratio must be in [0, 1]")
        try require(weightDecay >= 0, "weight decay must be >= 0")
        try require(gradientClip >= 0, "gradient clip must be >= 0")
        try require(evalEvery >= 0 && saveEvery >= 0, "eval/save intervals must be >= 0")
    }

    var schedule: LearningRateSchedule {
        LearningRateSchedule(peak: learningRate, warmupSteps: warmupSteps, totalSteps: steps, minRatio: minLearningRateRatio)
    }
}

/// Where a run stands: everything besides weights and optimizer moments that an exact
/// resume needs.
public struct TrainingProgress: Codable, Sendable, Equatable {
    public var step = 0
    public var sampler: BatchSampler
    public var options: TrainingOptions
    /// Training loss of every step so far.
    public var losses: [Float] = []
    public var evalLosses: [Int: Float] = [:]
}

/// Runs AdamW over a loss function. Used by `calm pretrain` and by CALM composition training.
public final class Trainer {
    public let parameters: NamedParameters
    public let optimizer: AdamW
    public private(set) var progress: TrainingProgress
    let train: TrainingData
    let eval: TrainingData?
    let padID: Int
    /// Loss of one batch; must build a graph reaching `parameters`.
    let lossFunction: (TokenBatch, [Bool]) -> Tensor
    public var reporter: ProgressReporter?
    /// Optional training-batch loss that also receives the batch's example indices (into the
    /// training set), e.g. to reuse per-example cached activations. Evaluation keeps `loss`.
    public var indexedLoss: ((TokenBatch, [Bool], [Int]) -> Tensor)?
    /// Data-parallel training over these processes (nil: this process alone).
    public var group: (any DataParallelGroup)? {
        didSet { synchronizer = group.map { GradientSynchronizer(group: $0, parameters: parameters) } }
    }
    /// How each global batch is split among the group's ranks.
    public var sharding: BatchSharding = .slices
    private var synchronizer: GradientSynchronizer?

    public init(parameters: NamedParameters, train: TrainingData, eval: TrainingData?, padID: Int,
                options: TrainingOptions, loss: @escaping (TokenBatch, [Bool]) -> Tensor) throws {
        try options.validate()
        self.parameters = parameters
        self.train = train
        self.eval = eval
        self.padID = padID
        self.lossFunction = loss
        optimizer = AdamW(parameters: parameters, hyper: .init(beta1: options.beta1, beta2: options.beta2,
                                                                 weightDecay: options.weightDecay))
        progress = TrainingProgress(sampler: BatchSampler(seed: options.seed, batchSize: options.batchSize), options: options)
    }

    public var options: TrainingOptions { progress.options }

    /// Mean loss over the whole evaluation set, without gradients.
    public func evaluate(_ data: TrainingData) -> Float {
        withoutGradients {
            var total: Double = 0, weight = 0
            var start = 0
            while start < data.examples.count {
                let chunk = Array(data.examples[start..<min(start + options.batchSize, data.examples.count)])
                let (tokens, mask) = collate(chunk, padID: padID)
                let targets = mask.dropFirst().filter { $0 }.count
                total += Double(lossFunction(tokens, mask).item) * Double(targets)
                weight += targets
                start += options.batchSize
            }
            return weight == 0 ? 0 : Float(total / Double(weight))
        }
    }

    /// Trains until `options.steps`, calling `save` at every save interval and at the end.
    /// With a `group`, this process computes its share of every global batch, gradients are
    /// summed over the group, and rank 0 alone evaluates, reports and saves.
    public func run(save: ((Trainer) throws -> Void)? = nil) throws {
        let schedule = options.schedule
        if let synchronizer, let group {
            reporter?.log(String(format: "data parallel over %d ranks (%@ shares): %.2f MB of gradients allreduced per step in %d bucket(s)",
                                 group.size, sharding.rawValue, Double(synchronizer.floatsPerStep * 4) / 1e6, synchronizer.bucketsPerStep))
        }
        while progress.step < options.steps {
            let started = Date()
            let indices = progress.sampler.next(count: train.examples.count)
            optimizer.zeroGradients()
            let (lossValue, tokenCount) = try computeGradients(indices)
            if options.gradientClip > 0 { clipGradientNorm(parameters, maxNorm: options.gradientClip) }
            let lr = schedule.rate(at: progress.step)
            optimizer.step(learningRate: lr)
            progress.step += 1
            progress.losses.append(lossValue)
            let seconds = Date().timeIntervalSince(started)
            reporter?.update(step: progress.step, loss: lossValue,
                             tokensPerSecond: Double(tokenCount) / max(seconds, 1e-9), learningRate: lr)
            let isLast = progress.step == options.steps
            let evalDue = eval != nil && ((options.evalEvery > 0 && progress.step % options.evalEvery == 0) || isLast)
            let saveDue = save != nil && ((options.saveEvery > 0 && progress.step % options.saveEvery == 0) || isLast)
            var failure: (any Error)?
            if isReporting {
                do {
                    if let eval, evalDue {
                        let value = evaluate(eval)
                        progress.evalLosses[progress.step] = value
                        reporter?.log(String(format: "step %d: eval loss %.4f", progress.step, value))
                    }
                    if let save, saveDue { try save(self) }
                } catch { failure = error }
            }
            if let group, evalDue || saveDue {
                // The other ranks wait here for rank 0's evaluation and checkpoint, and learn
                // whether it failed, so all stop together with its message.
                let answers = try group.gather(Array((failure.map { "\($0)" } ?? "").utf8), patient: true)
                let message = String(decoding: answers[0], as: UTF8.self)
                if !message.isEmpty { throw AgreedFailure(message) }
            } else if let failure {
                throw failure
            }
        }
        if let synchronizer, progress.step > 0 {
            reporter?.log(String(format: "allreduce: %.1f ms per step on average, waits for slower ranks included (%d calls)",
                                 synchronizer.seconds * 1000 / Double(max(1, synchronizer.calls / max(1, synchronizer.bucketsPerStep))),
                                 synchronizer.calls))
        }
        reporter?.finish()
    }

    /// Whether this process prints and saves: the only one, or rank 0 of a group.
    public var isReporting: Bool { (group?.rank ?? 0) == 0 }

    /// Loss and gradients of one global batch (this rank's share of it, summed over the
    /// group); returns the batch's mean loss and its token count.
    private func computeGradients(_ indices: [Int]) throws -> (Float, Int) {
        func batch(_ picked: [Int]) -> (Tensor, Int) {
            let (tokens, mask) = collate(picked.map { train.examples[$0] }, padID: padID)
            return (indexedLoss?(tokens, mask, picked) ?? lossFunction(tokens, mask), tokens.ids.count)
        }
        guard let group, let synchronizer else {
            let (loss, tokenCount) = batch(indices)
            guard loss.item.isFinite else {
                throw DataError("training diverged at step \(progress.step + 1) (loss \(loss.item)); try a lower learning rate")
            }
            try checkDivergence(loss.item)
            loss.backward()
            return (loss.item, tokenCount)
        }
        // Each rank's loss is a mean over its own targets; weighting it by its share of the
        // batch's targets makes the sum the mean over the whole batch.
        func targets(_ picked: [Int]) -> Int {
            picked.reduce(0) { total, i in total + train.examples[i].lossMask.dropFirst().filter { $0 }.count }
        }
        let mine = sharding.share(of: indices, rank: group.rank, size: group.size)
        var local: Float = 0
        if !mine.isEmpty {
            let (loss, _) = batch(mine)
            loss.backward()
            local = loss.item
        }
        let total = targets(indices)
        let weight = total == 0 ? 0 : Float(targets(mine)) / Float(total)
        let loss = try synchronizer.synchronize(loss: local, weight: weight)
        do {
            guard loss.isFinite else {
                throw DataError("training diverged at step \(progress.step + 1) (loss \(loss)); try a lower learning rate")
            }
            try checkDivergence(loss)
        } catch { throw AgreedFailure("\(error)") }  // every rank sees the same global loss
        let longest = indices.map { train.examples[$0].ids.count }.max() ?? 0
        return (loss, indices.count * longest)
    }

    private var divergence = DivergenceCheck()

    private func checkDivergence(_ loss: Float) throws {
        guard let (mean, start) = divergence.record(loss) else { return }
        throw DataError(String(format: "training diverged at step %d: mean loss %.3f over the last %d steps, %.3f over the first %d; nothing saved from this point. Lower --lr (now %g)",
                               progress.step + 1, mean, DivergenceCheck.window, start, DivergenceCheck.window, options.learningRate))
    }

    // MARK: Saved state

    /// Writes optimizer moments and progress under `/training` of a checkpoint being written.
    public func writeState(to file: HDF5File) throws {
        let group = CheckpointFormat.trainingGroup
        try file.createGroup(group)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try file.setAttribute("progress", String(decoding: try encoder.encode(progress), as: UTF8.self), on: group)
        try file.setAttribute("optimizer_steps", optimizer.stepCount, on: group)
        try file.createGroup("\(group)/adam_m")
        try file.createGroup("\(group)/adam_v")
        for (i, (name, tensor)) in parameters.enumerated() {
            try file.writeFloats("\(group)/adam_m/\(name)", shape: tensor.shape, data: optimizer.firstMoments[i])
            try file.writeFloats("\(group)/adam_v/\(name)", shape: tensor.shape, data: optimizer.secondMoments[i])
        }
    }

    /// Restores optimizer moments and progress saved by `writeState`. `steps` may extend the run.
    public func restoreState(from file: HDF5File, steps: Int? = nil) throws {
        let group = CheckpointFormat.trainingGroup
        guard file.exists(group), let json = try file.stringAttribute("progress", of: group),
              let optimizerSteps = try file.intAttribute("optimizer_steps", of: group) else {
            throw CheckpointError(path: file.path, message: "no resumable training state (/\(group))")
        }
        guard var saved = try? JSONDecoder().decode(TrainingProgress.self, from: Data(json.utf8)) else {
            throw CheckpointError(path: file.path, message: "malformed training progress in /\(group)")
        }
        var m: [[Float]] = [], v: [[Float]] = []
        for (name, tensor) in parameters {
            let (ms, md) = try file.readFloats("\(group)/adam_m/\(name)")
            let (vs, vd) = try file.readFloats("\(group)/adam_v/\(name)")
            guard ms == tensor.shape, vs == tensor.shape else {
                throw CheckpointError(path: file.path, message: "optimizer state for \(name) has the wrong shape")
            }
            m.append(md)
            v.append(vd)
        }
        try optimizer.restore(firstMoments: m, secondMoments: v, stepCount: optimizerSteps)
        if let steps { saved.options.steps = steps }
        progress = saved
    }
}

extension Trainer {
    /// The options a saved run used (so a resumed optimizer matches), with `steps` replaced.
    public static func savedOptions(in file: HDF5File, steps: Int?) throws -> TrainingOptions {
        guard let json = try? file.stringAttribute("progress", of: CheckpointFormat.trainingGroup),
              let saved = try? JSONDecoder().decode(TrainingProgress.self, from: Data(json.utf8)) else {
            throw CheckpointError(path: file.path, message: "no resumable training state (/\(CheckpointFormat.trainingGroup))")
        }
        var options = saved.options
        if let steps { options.steps = steps }
        return options
    }
}
