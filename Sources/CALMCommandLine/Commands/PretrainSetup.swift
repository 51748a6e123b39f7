import CALMCheckpoint
import CALMModels
import CALMTokenizers
import CALMTraining
import Foundation

/// Where a `calm pretrain` run starts: a new model, a model to fine-tune (--init-from), or a
/// run to continue (--resume). Options given on the command line that disagree with a model
/// taken from a checkpoint are refused rather than silently ignored.
extension Pretrain {
    struct Start {
        var model: TransformerLM
        var tokenizer: any Tokenizer
        var sequenceLength: Int
        var options: TrainingOptions
        var resumeFile: HDF5File?
        /// Steps already trained (0 unless resuming).
        var resumedAt = 0
        /// The output head stays frozen (--head-from, or a resumed run that used it).
        var frozenHead = false
    }

    func startingPoint() throws -> Start {
        if let resume { return try resumePoint(resume) }
        let options = training.newRunOptions()
        let lm: TransformerLM, tokenizer: any Tokenizer
        if let initFrom {
            let checkpoint = try ModelCheckpoint.load(initFrom)
            try requireAgreement(with: checkpoint, source: "\(initFrom) (--init-from)")
            (lm, tokenizer) = (checkpoint.model, checkpoint.tokenizer)
        } else {
            tokenizer = try makeTokenizer()
            var modelConfig = try model.makeConfig(file: config, vocabSize: tokenizer.vocabularySize)
            if dataVocabulary { modelConfig.storedTokens = try tokensUsed(tokenizer: tokenizer) }
            lm = try TransformerLM(config: modelConfig, seed: options.seed)
            if dataVocabulary {
                // The row every unstored token reads never occurs in the data, so it never trains:
                // it starts at zero, a neutral input (as --zero-unseen-embeddings gives).
                let table = lm.tokenEmbedding, width = modelConfig.hiddenSize
                for j in 0..<width { table.data[(modelConfig.embeddingRows - 1) * width + j] = 0 }
            }
            if let headFrom { try anchorHead(lm, from: headFrom, tokenizer: tokenizer, seed: options.seed) }
        }
        let positions = lm.config.maxPositions
        let length = model.seqLen ?? min(ModelFlags.defaultSequenceLength, positions)
        guard (2...positions).contains(length) else {
            throw CLIError("--seq-len must be in 2...\(positions) (the model's max positions), got \(length)")
        }
        return Start(model: lm, tokenizer: tokenizer, sequenceLength: length, options: options, frozenHead: headFrom != nil)
    }

    /// --head-from: the expert's head as a projection of the anchor's (see `AnchoredHead`).
    private func anchorHead(_ lm: TransformerLM, from path: String, tokenizer: any Tokenizer, seed: UInt64) throws {
        let anchor = try ModelCheckpoint.load(path)
        guard anchor.tokenizer.fingerprint == tokenizer.fingerprint else {
            throw CLIError("--head-from \(path): its tokenizer differs from the expert's (give --tokenizer-from \(path) as well)")
        }
        let head = anchor.model.lmHead ?? anchor.model.tokenEmbedding
        do { try AnchoredHead.apply(to: lm, anchorHead: head, seed: seed) } catch { throw CLIError("\(path): \(error)") }
    }

    /// Model, tokenizer, sequence length and training options all come from the checkpoint.
    private func resumePoint(_ path: String) throws -> Start {
        let checkpoint = try ModelCheckpoint.load(path)
        let file = try HDF5File.open(path)
        let source = "\(path) (--resume)"
        try requireAgreement(with: checkpoint, source: source)
        let saved = try Trainer.savedOptions(in: file, steps: nil)
        let group = CheckpointFormat.trainingGroup
        // Checkpoints from before the attribute was written trained at their full context.
        let length = try file.intAttribute(Self.sequenceLengthAttribute, of: group) ?? checkpoint.model.config.maxPositions
        if let given = model.seqLen, given != length {
            throw CLIError("--seq-len \(given) conflicts with \(length) in \(source); leave --seq-len out to use the model as it is")
        }
        let options = try training.resumed(from: saved, source: source)
        let done = try file.intAttribute("optimizer_steps", of: group) ?? 0
        guard options.steps > done else {
            throw CLIError("--steps: \(path) has already trained \(done) of \(saved.steps) steps; give --steps above \(done) to continue")
        }
        let frozen = try file.stringAttribute(Self.frozenWeightsAttribute, of: group)
        return Start(model: checkpoint.model, tokenizer: checkpoint.tokenizer, sequenceLength: length, options: options,
                     resumeFile: file, resumedAt: done, frozenHead: frozen == AnchoredHead.frozenWeight)
    }

    /// Architecture flags, --config and --tokenizer-from must describe the checkpoint's model.
    private func requireAgreement(with checkpoint: ModelCheckpoint, source: String) throws {
        try model.requireAgreement(with: checkpoint.model.config, source: source)
        if let config {
            guard try ModelFlags.parse(file: config, vocabSize: checkpoint.model.config.vocabSize) == checkpoint.model.config else {
                throw CLIError("--config \(config) describes a different model than \(source); leave --config out")
            }
        }
        if let tokenizerFrom {
            guard try tokenizer(from: tokenizerFrom).fingerprint == checkpoint.tokenizer.fingerprint else {
                throw CLIError("--tokenizer-from \(tokenizerFrom): its tokenizer differs from the one in \(source); leave --tokenizer-from out")
            }
        }
    }

    /// Every token id the training and evaluation data use, with the special tokens, ascending
    /// (--data-vocabulary). Sequence length plays no part: records are read whole.
    private func tokensUsed(tokenizer: any Tokenizer) throws -> [Int] {
        var used = Set([tokenizer.bosID, tokenizer.eosID, tokenizer.padID].compactMap { $0 })
        for path in [data] + (evalData.map { [$0] } ?? []) {
            let set = try TrainingData.load(path, tokenizer: tokenizer, sequenceLength: Int(Int32.max), eosPerLine: eosPerLine)
            for example in set.examples { used.formUnion(example.ids) }
        }
        return used.sorted()
    }

    private func makeTokenizer() throws -> any Tokenizer {
        if let tokenizerFrom { return try tokenizer(from: tokenizerFrom) }
        var corpus = ""
        for path in [data] + (evalData.map { [$0] } ?? []) { corpus += try dataTexts(of: path).joined() }
        return CharTokenizer(corpus: corpus)
    }

    /// A checkpoint's tokenizer (.h5), a tokenizer description (.json), or the characters of a text file.
    private func tokenizer(from source: String) throws -> any Tokenizer {
        if source.hasSuffix(".h5") { return try ModelCheckpoint.load(source).tokenizer }
        guard let bytes = FileManager.default.contents(atPath: source), let text = String(data: bytes, encoding: .utf8) else {
            throw DataError("\(source): cannot read the file as UTF-8 text")
        }
        guard source.hasSuffix(".json") else { return CharTokenizer(corpus: text) }
        do { return try TokenizerRegistry.load(json: text) } catch { throw DataError("\(source): \(error)") }
    }

    /// Loads a data set; a record longer than the window gets an error that says how to fix
    /// it, and text the tokenizer does not cover gets a warning.
    func load(_ path: String, _ start: Start) throws -> TrainingData {
        let set: TrainingData
        do {
            set = try TrainingData.load(path, tokenizer: start.tokenizer, sequenceLength: start.sequenceLength, eosPerLine: eosPerLine)
        } catch let error as RecordTooLongError {
            throw CLIError("\(error); \(hint(error, start))")
        }
        // The cheap test first: most data is fully covered.
        if set.examples.contains(where: { start.tokenizer.containsUnknown($0.ids) }) {
            start.tokenizer.warnAboutUnknownPieces(in: try dataTexts(of: path), what: path)
        }
        return set
    }

    private func hint(_ error: RecordTooLongError, _ start: Start) -> String {
        let needed = error.tokens - 1
        if resume != nil { return "a resumed run keeps the checkpoint's --seq-len \(start.sequenceLength); shorten the record" }
        if needed > start.model.config.maxPositions && (initFrom != nil || config != nil || model.maxPositions != nil) {
            return "the model holds at most \(start.model.config.maxPositions) positions; shorten the record"
        }
        if tokenizerFrom == nil && initFrom == nil {
            return "the default tokenizer makes one token per character: reuse a word-level tokenizer with --tokenizer-from ANCHOR.h5 "
                + "(for the KV suite: --tokenizer-from checkpoints/anchor.h5) or raise --seq-len to at least \(needed)"
        }
        return "raise --seq-len to at least \(needed)"
    }
}
