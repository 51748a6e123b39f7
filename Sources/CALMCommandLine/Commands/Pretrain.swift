import ArgumentParser
import CALMCheckpoint
import CALMDistributed
import CALMModels
import CALMTokenizers
import CALMTraining
import Foundation

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a base language model from scratch and write an HDF5 checkpoint.",
        discussion: """
            Data: plain text (loss on every token) or JSONL {"prompt", "completion"} lines (loss on the \
            completion only). The model comes from --config (JSON, snake_case keys as in `calm inspect`) or \
            from the architecture flags. --steps 0 writes the untrained model. The checkpoint includes the \
            optimizer state, so --resume continues the same run exactly: it takes the model, tokenizer, \
            sequence length and training options from the checkpoint; give only --steps (to go further) and \
            the data. Options given with --resume must agree with the checkpoint.
            """)

    @Option(help: "Training data (.txt or .jsonl).") var data: String
    @Option(help: "Held-out data for evaluation loss.") var evalData: String?
    @Flag(help: """
        Text data: every line is one document that ends with <eos> before its line break, as a chat turn ends, \
        so the model learns where a statement ends and a composition can relay it (give it again with --resume).
        """)
    var eosPerLine = false
    @Option(help: "Output checkpoint (.h5).") var output: String
    @Option(help: "Resume from a checkpoint written by pretrain (its model, tokenizer and options are used).") var resume: String?
    @Option(help: "Start from this model checkpoint's weights, configuration and tokenizer (fine-tuning).") var initFrom: String?
    @Option(parsing: .unconditional, help: "With --init-from: train only rank-r LoRA adapters on every projection, merged into the output.")
    var loraRank: Int?
    @Option(help: "Model configuration JSON; vocab_size may be omitted (taken from the tokenizer).") var config: String?
    @Option(help: """
        Tokenizer: reuse a checkpoint's (.h5; to compose with an anchor, give the anchor), load a tokenizer \
        description (.json), or take the characters of any other text file; default: the characters of the data.
        """)
    var tokenizerFrom: String?
    @OptionGroup var model: ModelFlags

    @Flag(help: "Write the final checkpoint without optimizer state (a third of the size; it cannot be resumed).")
    var noResumeState = false
    @Flag(help: """
        Give tokens that never occur in the training data a zero input embedding (they get no gradient, so \
        they stay zero), instead of leaving them at random initial values. A later composition then sees \
        every unseen token as the same neutral input, as untrained reserved tokens are in Llama 3.
        """)
    var zeroUnseenEmbeddings = false
    @Flag(help: """
        Store and predict only the tokens the training and evaluation data use (one extra row reads any \
        other token, which the model never predicts). A small expert with a large tokenizer (49k tokens \
        for SmolLM2) then pays for a softmax and embedding over a few thousand tokens: faster steps and \
        a checkpoint a fraction of the size. Composition reads the expert as usual.
        """)
    var dataVocabulary = false
    @Option(help: ArgumentHelp("""
        Anchor checkpoint (.h5, same tokenizer): the expert's output head becomes the anchor's head projected \
        onto its top principal directions and stays frozen (the input embedding starts there and trains). The \
        expert then predicts in the anchor's token space, so `calm compose --vocabulary-bridges` carries its \
        prediction over exactly for every token, including tokens the composition data never shows.
        """, valueName: "anchor.h5"))
    var headFrom: String?

    @OptionGroup var training: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions

    /// Attribute of `/training` holding the sequence length, so --resume can reuse it.
    static let sequenceLengthAttribute = "sequence_length"
    /// Attribute of `/training` naming the weight the run keeps frozen (--head-from), so --resume does too.
    static let frozenWeightsAttribute = "frozen_weights"

    func run() throws {
        let group = try MPIRun.joinIfLaunched(threadsGiven: runtime.threads != nil)
        let writes = group?.rank ?? 0 == 0  // under mpirun only rank 0 writes
        try checkOptions()
        if writes { try OutputPath.validate(output, option: "--output") }
        try runtime.apply()
        let start = try startingPoint()
        let model = start.model, tokenizer = start.tokenizer, options = start.options
        if model.isQuantized {
            throw CLIError("\(resume ?? initFrom ?? ""): has quantized weights, which cannot train; start from the float32 checkpoint")
        }
        var trainable = model.parameters
        if let loraRank {
            trainable = model.attachLowRankAdapters(rank: loraRank, alpha: Float(loraRank), seed: options.seed)
        } else {
            model.setTrainable(true)
        }
        if start.frozenHead, let head = model.head?.dense {
            head.requiresGrad = false
            head.grad = nil
            trainable.removeAll { $0.name == AnchoredHead.frozenWeight }
        }
        if options.steps == 0 {
            // An untrained model (e.g. the random-weight augment of the paper's ablations).
            guard writes else { return }
            try ModelCheckpoint.save(model: model, tokenizer: tokenizer, to: output)
            FileHandle.standardError.write(Data("wrote an untrained model (seed \(options.seed)) to \(output)\n".utf8))
            return
        }
        let train = try load(data, start)
        let eval = try evalData.map { try load($0, start) }
        if zeroUnseenEmbeddings { try zeroUnseen(model, data: train, resumed: start.resumeFile != nil) }

        let trainer = try Trainer(parameters: trainable, train: train, eval: eval,
                                  padID: tokenizer.padID ?? 0, options: options) { tokens, mask in
            model.loss(tokens, lossMask: mask)
        }
        if let file = start.resumeFile { try trainer.restoreState(from: file, steps: options.steps) }
        if let group {
            trainer.group = group
            // Every weight counts, frozen LoRA bases included, and the tokenizer and configuration.
            let digests = [tokenizer.fingerprint, String(describing: model.config)]
                + model.parameters.map { InputAgreement.digest(ofArrays: [$0.tensor.data]) }
            try InputAgreement.check(Result {
                [.init("model (configuration, tokenizer, weights)", try InputAgreement.digest(ofJSON: digests))] + (try trainer.fingerprints())
            }, group: group)
        }

        let log = FileHandle.standardError
        if dataVocabulary, let stored = model.config.storedTokens {
            log.write(Data("stores \(stored.count) of \(model.config.vocabSize) tokens (those the data uses; --data-vocabulary)\n".utf8))
        }
        if let resume {
            log.write(Data("resuming \(resume) at step \(start.resumedAt) of \(options.steps)\n".utf8))
        } else if let message = training.warmupNote(for: options) {
            note(message)
        }
        log.write(Data("model: \(model.config.architecture), \(model.parameterCount) parameters (\(trainable.reduce(0) { $0 + $1.tensor.count }) trainable); data: \(train.examples.count) sequences, \(train.tokenCount) tokens\n".utf8))
        trainer.reporter = ProgressReporter(totalSteps: options.steps, logEvery: options.logEvery)
        let (outputPath, slimFinal, sequenceLength, lora) = (output, noResumeState, start.sequenceLength, loraRank != nil)
        let frozenHead = start.frozenHead
        try trainer.run { trainer in
            let final = trainer.progress.step == trainer.options.steps
            if final && lora { model.mergeLowRankAdapters() }
            try ModelCheckpoint.save(model: model, tokenizer: tokenizer, to: outputPath) { file in
                if !(final && slimFinal) {
                    try trainer.writeState(to: file)
                    try file.setAttribute(Self.sequenceLengthAttribute, sequenceLength, on: CheckpointFormat.trainingGroup)
                    if frozenHead {
                        try file.setAttribute(Self.frozenWeightsAttribute, AnchoredHead.frozenWeight, on: CheckpointFormat.trainingGroup)
                    }
                }
            }
            trainer.reporter?.log("step \(trainer.progress.step): saved \(outputPath)")
        }
        let losses = trainer.progress.losses.suffix(trainer.progress.step - start.resumedAt)
        let head = losses.prefix(10).reduce(0, +) / Float(max(1, min(10, losses.count)))
        let tail = losses.suffix(10).reduce(0, +) / Float(max(1, min(10, losses.count)))
        log.write(Data(String(format: "loss %.4f (first 10 steps) -> %.4f (last 10 steps)\n", head, tail).utf8))
    }

    /// Everything that can be checked before reading a model or data.
    private func checkOptions() throws {
        try model.checkRanges()
        try training.checkRanges(minimumSteps: 0)
        try OptionCheck.atLeast(loraRank, 1, "--lora-rank")
        if resume != nil && initFrom != nil { throw CLIError("--resume and --init-from: give one (--resume continues a pretrain run)") }
        if loraRank != nil && initFrom == nil { throw CLIError("--lora-rank needs --init-from (LoRA adapts an existing model)") }
        if dataVocabulary && (resume != nil || initFrom != nil) {
            throw CLIError("--data-vocabulary applies to a new model; \(resume != nil ? "--resume" : "--init-from") models keep their vocabulary")
        }
        if headFrom != nil && (resume != nil || initFrom != nil) {
            throw CLIError("--head-from applies to a new model; \(resume != nil ? "a resumed run keeps its frozen head" : "--init-from models keep their head")")
        }
        if dataVocabulary && zeroUnseenEmbeddings {
            throw CLIError("--data-vocabulary and --zero-unseen-embeddings: give one (with --data-vocabulary unseen tokens already share one row)")
        }
    }

    /// Sets tokens absent from the training data to zero input embeddings. On resume the
    /// rows must already be zero (the first run used the flag); anything else would change
    /// the model in the middle of a run.
    private func zeroUnseen(_ model: TransformerLM, data: TrainingData, resumed: Bool) throws {
        guard !model.config.tiedEmbeddings else {
            throw CLIError("--zero-unseen-embeddings needs untied embeddings (a tied output head trains every row)")
        }
        var seen = [Bool](repeating: false, count: model.config.vocabSize)
        for example in data.examples { for id in example.ids where id >= 0 && id < seen.count { seen[id] = true } }
        let width = model.config.hiddenSize
        let unseen = seen.indices.filter { !seen[$0] }
        if resumed {
            guard unseen.allSatisfy({ id in (0..<width).allSatisfy { model.tokenEmbedding.data[id * width + $0] == 0 } }) else {
                throw CLIError("--zero-unseen-embeddings: \(resume ?? "") was not trained with it (unseen tokens have nonzero embeddings); leave it out")
            }
            return
        }
        for id in unseen { for j in 0..<width { model.tokenEmbedding.data[id * width + j] = 0 } }
        FileHandle.standardError.write(Data("zeroed the input embeddings of \(unseen.count) tokens absent from the training data\n".utf8))
    }
}
