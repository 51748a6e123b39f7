import CALMCheckpoint
import CALMModels
import CALMTensor
import CALMTokenizers
import CALMTraining
import Foundation
import Testing

@Suite("Training")
struct TrainingTests {
    static let corpus = String(repeating: "the cat sat on the mat. the dog sat on the log. ", count: 40)
    let tokenizer = CharTokenizer(corpus: TrainingTests.corpus)

    func makeModel() throws -> TransformerLM {
        let model = try TransformerLM(config: .llama(vocabSize: tokenizer.vocabularySize, hiddenSize: 32, numLayers: 2,
                                                     numHeads: 4, intermediateSize: 64, maxPositions: 33), seed: 1)
        model.setTrainable(true)
        return model
    }

    func options(steps: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.steps = steps
        o.batchSize = 8
        o.learningRate = 1e-2
        o.warmupSteps = 5
        return o
    }

    @Test func pretrainingLowersTheLoss() throws {
        let model = try makeModel()
        let data = TrainingData.fromText(Self.corpus, tokenizer: tokenizer, sequenceLength: 32)
        let trainer = try Trainer(parameters: model.parameters, train: data, eval: data, padID: 0, options: options(steps: 60)) {
            model.loss($0, lossMask: $1)
        }
        let before = trainer.evaluate(data)
        try trainer.run()
        let after = trainer.evaluate(data)
        #expect(before > 2.5)  // about ln(vocab) at initialisation
        #expect(after < 0.5 * before, "eval loss \(before) -> \(after)")
    }

    @Test func resumedRunContinuesTheSameLossCurve() throws {
        let data = TrainingData.fromText(Self.corpus, tokenizer: tokenizer, sequenceLength: 32)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-resume-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)

        let straightModel = try makeModel()
        let straight = try Trainer(parameters: straightModel.parameters, train: data, eval: nil, padID: 0, options: options(steps: 12)) {
            straightModel.loss($0, lossMask: $1)
        }
        try straight.run()

        // Same run, stopped after 6 steps and saved...
        let firstModel = try makeModel()
        let first = try Trainer(parameters: firstModel.parameters, train: data, eval: nil, padID: 0, options: options(steps: 6)) {
            firstModel.loss($0, lossMask: $1)
        }
        let path = "\(dir)/half.h5"
        try first.run { trainer in
            try ModelCheckpoint.save(model: firstModel, tokenizer: tokenizer, to: path) { try trainer.writeState(to: $0) }
        }
        // ...then resumed from the file alone.
        let loaded = try ModelCheckpoint.load(path).model
        loaded.setTrainable(true)
        let file = try HDF5File.open(path)
        let resumedOptions = try Trainer.savedOptions(in: file, steps: 12)
        let resumed = try Trainer(parameters: loaded.parameters, train: data, eval: nil, padID: 0, options: resumedOptions) {
            loaded.loss($0, lossMask: $1)
        }
        try resumed.restoreState(from: file, steps: 12)
        try resumed.run()

        #expect(resumed.progress.losses == straight.progress.losses)
        #expect(resumed.progress.losses.count == 12)
        for (a, b) in zip(loaded.parameters, straightModel.parameters) { #expect(a.tensor.data == b.tensor.data) }
    }

    @Test func jsonlScoresOnlyTheCompletion() throws {
        let text = """
            {"prompt": "ab", "completion": " c"}

            {"prompt": "b", "completion": "a"}
            """
        let data = try TrainingData.fromJSONL(text, path: "x.jsonl", tokenizer: CharTokenizer(corpus: "abc "), sequenceLength: 8)
        #expect(data.examples.count == 2)
        let e = data.examples[0]
        // <bos> a b ␠ c <eos>: targets are " c" and <eos>.
        #expect(e.ids.count == 6)
        #expect(e.lossMask == [false, false, false, true, true, true])
        let (tokens, mask) = collate(data.examples, padID: 0)
        #expect(tokens.length == 6 && tokens.batch == 2)
        #expect(Array(mask[6...]) == [false, false, true, true, false, false])
        let targets = TransformerLM.shiftedTargets(tokens, lossMask: mask)
        #expect(targets.filter { $0 >= 0 }.count == 5)
    }

    /// --eos-per-line: each non-blank line becomes its tokens, <eos> and the line break, packed
    /// into windows after <bos>; blank lines vanish.
    @Test func eachLineEndsWithEndOfSequence() throws {
        let tokenizer = CharTokenizer(corpus: "abc \n")
        let (a, b, c, eos) = (tokenizer.encode("a")[0], tokenizer.encode("b")[0], tokenizer.encode("c")[0], 2)
        let packed = TrainingData.fromText("ab\n\n c\nc", tokenizer: tokenizer, sequenceLength: 4, lineEnd: eos)
        // a b <eos> ⏎ ␠ c <eos> ⏎ c <eos> ⏎: blank lines vanish, a leading space stays
        let stream = packed.examples.flatMap { $0.ids.dropFirst() }
        let (space, lineBreak) = (tokenizer.encode(" "), tokenizer.encode("\n"))
        #expect(stream == [a, b, eos] + lineBreak + space + [c, eos] + lineBreak + [c, eos] + lineBreak)
        #expect(packed.examples.allSatisfy { $0.ids.first == 1 && $0.lossMask == [false] + Array(repeating: true, count: $0.ids.count - 1) })
        let running = TrainingData.fromText("ab\nc", tokenizer: tokenizer, sequenceLength: 8)
        #expect(running.examples[0].ids.dropFirst().elementsEqual(tokenizer.encode("ab\nc")))
    }

    @Test func malformedJSONLNamesFileAndLine() {
        let text = "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"\n"
        #expect { try TrainingData.fromJSONL(text, path: "d.jsonl", tokenizer: CharTokenizer(corpus: "ab"), sequenceLength: 8) }
            throws: { "\($0)".hasPrefix("d.jsonl:2: malformed JSON line") }
    }

    @Test func samplerVisitsEveryExampleOncePerEpoch() {
        var sampler = BatchSampler(seed: 3, batchSize: 4)
        let seen = (0..<6).flatMap { _ in sampler.next(count: 10) }
        #expect(Set(seen.prefix(10)).count == 10)
        #expect(Set(seen[10..<20]).count == 10)
        #expect(seen.prefix(10) != seen[10..<20])  // a new order each epoch
        #expect(sampler.epoch == 2)
        var again = BatchSampler(seed: 3, batchSize: 4)
        #expect((0..<6).flatMap { _ in again.next(count: 10) } == seen)
    }
}
