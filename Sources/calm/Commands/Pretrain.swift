import ArgumentParser
import CALMCheckpoint
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
            from the architecture flags. The checkpoint includes the optimizer state, so --resume continues \
            the same run exactly.
            """)

    @Option(help: "Training data (.txt or .jsonl).") var data: String
    @Option(help: "Held-out data for evaluation loss.") var evalData: String?
    @Option(help: "Output checkpoint (.h5).") var output: String
    @Option(help: "Resume from a checkpoint written by pretrain (its model and state are used).") var resume: String?
    @Option(help: "Start from this model checkpoint's weights, configuration and tokenizer (fine-tuning).") var initFrom: String?
    @Option(help: "With --init-from: train only rank-r LoRA adapters on every projection, merged into the output.")
    var loraRank: Int?
    @Option(help: "Model configuration JSON; vocab_size may be omitted (taken from the tokenizer).") var config: String?
    @Option(help: """
        Tokenizer: reuse a checkpoint's (.h5), load a tokenizer description (.json), or take the characters         of any other text file; default: the characters of the data.
        """)
    var tokenizerFrom: String?

    @Option(help: "Architecture when no --config: llama or gpt2.") var architecture = "llama"
    @Option(help: "Transformer blocks.") var layers = 4
    @Option(help: "Model width.") var hidden = 128
    @Option(help: "Attention heads.") var heads = 4
    @Option(help: "Key/value heads (grouped-query attention; default: --heads).") var kvHeads: Int?
    @Option(help: "MLP width (default: 4 x --hidden).") var ffn: Int?
    @Option(help: "Longest sequence the model supports (default: --seq-len).") var maxPositions: Int?
    @Option(help: "Training sequence length in tokens.") var seqLen = 128

    @Flag(help: "Write the final checkpoint without optimizer state (a third of the size; it cannot be resumed).")
    var noResumeState = false
    @Flag(help: """
        Give tokens that never occur in the training data a zero input embedding (they get no gradient, so \
        they stay zero), instead of leaving them at random initial values. A later composition then sees \
        every unseen token as the same neutral input, as untrained reserved tokens are in Llama 3.
        """)
    var zeroUnseenEmbeddings = false

    @OptionGroup var training: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let model: TransformerLM
        let tokenizer: any Tokenizer
        var resumeFile: HDF5File?
        if let resume {
            let checkpoint = try ModelCheckpoint.load(resume)
            model = checkpoint.model
            tokenizer = checkpoint.tokenizer
            resumeFile = try HDF5File.open(resume)
        } else if let initFrom {
            let checkpoint = try ModelCheckpoint.load(initFrom)
            model = checkpoint.model
            tokenizer = checkpoint.tokenizer
        } else {
            tokenizer = try makeTokenizer()
            model = try TransformerLM(config: try makeConfig(vocabSize: tokenizer.vocabularySize), seed: training.seed)
        }
        if model.isQuantized {
            throw CLIError("\(resume ?? initFrom ?? ""): has quantized weights, which cannot train; start from the float32 checkpoint")
        }
        var trainable = model.parameters
        if let loraRank {
            guard initFrom != nil, resume == nil, loraRank > 0 else {
                throw CLIError("--lora-rank needs --init-from (not --resume) and a positive rank")
            }
            trainable = model.attachLowRankAdapters(rank: loraRank, alpha: Float(loraRank), seed: training.seed)
        } else {
            model.setTrainable(true)
        }
        guard seqLen > 1, seqLen + 1 <= model.config.maxPositions + 1 else {
            throw CLIError("--seq-len must be in 2...\(model.config.maxPositions) (the model's max positions)")
        }
        if training.steps == 0 {
            // An untrained model (e.g. the random-weight augment of the paper's ablations).
            try ModelCheckpoint.save(model: model, tokenizer: tokenizer, to: output)
            FileHandle.standardError.write(Data("wrote an untrained model (seed \(training.seed)) to \(output)\n".utf8))
            return
        }
        let train = try TrainingData.load(data, tokenizer: tokenizer, sequenceLength: seqLen)
        let eval = try evalData.map { try TrainingData.load($0, tokenizer: tokenizer, sequenceLength: seqLen) }

        if zeroUnseenEmbeddings {
            guard !model.config.tiedEmbeddings else {
                throw CLIError("--zero-unseen-embeddings needs untied embeddings (a tied output head trains every row)")
            }
            var seen = [Bool](repeating: false, count: model.config.vocabSize)
            for example in train.examples { for id in example.ids where id >= 0 && id < seen.count { seen[id] = true } }
            let width = model.config.hiddenSize
            for id in seen.indices where !seen[id] {
                for j in 0..<width { model.tokenEmbedding.data[id * width + j] = 0 }
            }
            FileHandle.standardError.write(Data("zeroed the input embeddings of \(seen.filter { !$0 }.count) tokens absent from the training data\n".utf8))
        }
        var options = training.options
        if let resumeFile { options = try Trainer.savedOptions(in: resumeFile, steps: training.steps) }
        let trainer = try Trainer(parameters: trainable, train: train, eval: eval,
                                  padID: tokenizer.padID ?? 0, options: options) { tokens, mask in
            model.loss(tokens, lossMask: mask)
        }
        if let resumeFile { try trainer.restoreState(from: resumeFile, steps: training.steps) }
        resumeFile = nil

        let log = FileHandle.standardError
        log.write(Data("model: \(model.config.architecture), \(model.parameterCount) parameters (\(trainable.reduce(0) { $0 + $1.tensor.count }) trainable); data: \(train.examples.count) sequences, \(train.tokenCount) tokens\n".utf8))
        trainer.reporter = ProgressReporter(totalSteps: options.steps, logEvery: options.logEvery)
        let outputPath = output
        let slimFinal = noResumeState
        try trainer.run { trainer in
            let final = trainer.progress.step == trainer.options.steps
            if final && loraRank != nil { model.mergeLowRankAdapters() }
            try ModelCheckpoint.save(model: model, tokenizer: tokenizer, to: outputPath) { file in
                if !(final && slimFinal) { try trainer.writeState(to: file) }
            }
            trainer.reporter?.log("step \(trainer.progress.step): saved \(outputPath)")
        }
        let losses = trainer.progress.losses
        let head = losses.prefix(10).reduce(0, +) / Float(min(10, losses.count))
        let tail = losses.suffix(10).reduce(0, +) / Float(min(10, losses.count))
        log.write(Data(String(format: "loss %.4f (first 10 steps) -> %.4f (last 10 steps)\n", head, tail).utf8))
    }

    private func makeTokenizer() throws -> any Tokenizer {
        if let source = tokenizerFrom {
            if source.hasSuffix(".h5") { return try ModelCheckpoint.load(source).tokenizer }
            guard let bytes = FileManager.default.contents(atPath: source), let text = String(data: bytes, encoding: .utf8) else {
                throw DataError("\(source): cannot read the file as UTF-8 text")
            }
            guard source.hasSuffix(".json") else { return CharTokenizer(corpus: text) }
            do { return try TokenizerRegistry.load(json: text) } catch { throw DataError("\(source): \(error)") }
        }
        var corpus = ""
        for path in [data] + (evalData.map { [$0] } ?? []) {
            guard let bytes = FileManager.default.contents(atPath: path), let text = String(data: bytes, encoding: .utf8) else {
                throw DataError("\(path): cannot read the file as UTF-8 text")
            }
            if path.hasSuffix(".jsonl") {
                for r in try TrainingData.records(text, path: path) { corpus += r.prompt + r.completion }
            } else {
                corpus += text
            }
        }
        return CharTokenizer(corpus: corpus)
    }

    private func makeConfig(vocabSize: Int) throws -> TransformerConfig {
        if let path = config {
            guard let bytes = FileManager.default.contents(atPath: path),
                  var object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
                throw DataError("\(path): not a JSON object")
            }
            if object["vocab_size"] == nil { object["vocab_size"] = vocabSize }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            let parsed: TransformerConfig
            do { parsed = try TransformerConfig.parse(json: json) } catch { throw DataError("\(path): \(error)") }
            guard parsed.vocabSize >= vocabSize else {
                throw DataError("\(path): vocab_size \(parsed.vocabSize) is smaller than the tokenizer's \(vocabSize)")
            }
            return parsed
        }
        let positions = maxPositions ?? seqLen
        var c: TransformerConfig
        switch architecture {
        case "llama":
            c = .llama(vocabSize: vocabSize, hiddenSize: hidden, numLayers: layers, numHeads: heads, numKVHeads: kvHeads,
                       intermediateSize: ffn ?? 4 * hidden, maxPositions: positions)
        case "gpt2":
            c = .gpt2(vocabSize: vocabSize, hiddenSize: hidden, numLayers: layers, numHeads: heads, maxPositions: positions)
            if let ffn { c.intermediateSize = ffn }
        default:
            throw CLIError("--architecture must be llama or gpt2, got \(architecture)")
        }
        guard heads > 0, hidden % heads == 0 else { throw CLIError("--hidden \(hidden) must be a multiple of --heads \(heads)") }
        try c.validate()
        return c
    }
}
