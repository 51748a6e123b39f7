import CALMCheckpoint
import Foundation
import Testing

/// `calm pretrain`: resuming from what the checkpoint holds, warm-up on short runs, errors
/// that say how to fix them, and outputs checked before any work.
@Suite("calm pretrain options", .serialized)
struct PretrainCLITests {
    static let data: Result<String, any Error> = Result {
        let dir = try makeTemporaryDirectory()
        let lines = (0..<100).map { i in "{\"prompt\": \"\(i % 7) +\", \"completion\": \" \(i % 7 + 1)\"}" }
        try lines.joined(separator: "\n").write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        return dir
    }

    /// Non-default model and training options, so a resume that ignored the checkpoint would differ.
    static let model = ["--seq-len", "12", "--layers", "1", "--hidden", "16", "--heads", "2", "--lr", "1e-2", "--batch-size", "4"]

    /// A text file whose characters are a tokenizer over letters and digits (the data uses
    /// digits, spaces and "+" only); its path.
    static func lettersAndDigits(in dir: String) throws -> String {
        let path = "\(dir)/letters.txt"
        try "abcdefghijklmnopqrstuvwxyz 0123456789+".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func savedOptions(_ path: String) throws -> [String: Any] {
        let json = try HDF5File.open(path).stringAttribute("progress", of: "training") ?? ""
        let progress = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return progress?["options"] as? [String: Any] ?? [:]
    }

    func oneLineError(_ result: CLI.Result, _ fragments: [String]) {
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        for fragment in fragments { #expect(result.stderr.contains(fragment), "\(fragment) not in \(result.stderr)") }
    }

    @Test func resumeTakesEverythingFromTheCheckpoint() throws {
        let dir = try Self.data.get()
        let first = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/a.h5", "--steps", "20",
                                 "--warmup", "2"] + Self.model)
        #expect(first.status == 0, "\(first.stderr)")
        // Only data, output and --steps: model, sequence length and options come from a.h5.
        let resumed = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/b.h5", "--resume", "\(dir)/a.h5",
                                   "--steps", "25"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try HDF5File.open("\(dir)/b.h5").intAttribute("optimizer_steps", of: "training") == 25)
        #expect(try savedOptions("\(dir)/b.h5")["batchSize"] as? Int == 4)
        // Repeating the original command line with --resume is fine too: every value agrees.
        let repeated = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/c.h5", "--resume", "\(dir)/a.h5",
                                    "--steps", "22", "--warmup", "2"] + Self.model)
        #expect(repeated.status == 0, "\(repeated.stderr)")

        let resume = ["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/never.h5", "--resume", "\(dir)/a.h5"]
        oneLineError(try CLI.run(resume + ["--steps", "30", "--hidden", "32"]), ["--hidden 32", "16", "a.h5"])
        oneLineError(try CLI.run(resume + ["--steps", "30", "--seq-len", "16"]), ["--seq-len 16", "12"])
        oneLineError(try CLI.run(resume + ["--steps", "30", "--lr", "0.5"]), ["--lr 0.5", "0.01"])
        oneLineError(try CLI.run(resume + ["--steps", "30", "--architecture", "gpt2"]), ["--architecture gpt2", "llama"])
        oneLineError(try CLI.run(resume + ["--steps", "10"]), ["--steps", "already trained 20"])
        oneLineError(try CLI.run(resume), ["--steps", "already trained 20"])
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.h5"))
    }

    @Test func shortRunsClampTheWarmUp() throws {
        let dir = try Self.data.get()
        let run = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/w.h5", "--steps", "30"] + Self.model)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("warm-up shortened from 50 to 3"), "\(run.stderr)")
        #expect(try savedOptions("\(dir)/w.h5")["warmupSteps"] as? Int == 3)
        let long = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/w2.h5", "--steps", "30",
                                "--warmup", "2"] + Self.model)
        #expect(long.status == 0 && !long.stderr.contains("warm-up shortened"))
        #expect(try savedOptions("\(dir)/w2.h5")["warmupSteps"] as? Int == 2)
    }

    @Test func recordsLongerThanTheWindowSayHowToFixIt() throws {
        let dir = try makeTemporaryDirectory()
        try "{\"prompt\": \"abc + de - fgh ->\", \"completion\": \" 9 + 2 - 4\"}\n"
            .write(toFile: "\(dir)/kv.jsonl", atomically: true, encoding: .utf8)
        let run = try CLI.run(["pretrain", "--data", "\(dir)/kv.jsonl", "--output", "\(dir)/x.h5", "--seq-len", "16", "--steps", "1"])
        oneLineError(run, ["record 1 has 29 tokens", "--tokenizer-from", "--seq-len to at least 28"])
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.h5"))
    }

    @Test func dataTheTokenizerDoesNotCoverIsNamed() throws {
        let dir = try makeTemporaryDirectory()
        try "0123456789 +".write(toFile: "\(dir)/chars.txt", atomically: true, encoding: .utf8)
        try "{\"prompt\": \"1 + x\", \"completion\": \" 2\"}\n".write(toFile: "\(dir)/d.jsonl", atomically: true, encoding: .utf8)
        let run = try CLI.run(["pretrain", "--data", "\(dir)/d.jsonl", "--tokenizer-from", "\(dir)/chars.txt", "--output",
                               "\(dir)/x.h5", "--steps", "1", "--seq-len", "8", "--layers", "1", "--hidden", "8", "--heads", "1"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("warning:") && run.stderr.contains("\"x\""), "\(run.stderr)")
    }

    @Test func numericOptionsTakeNegativeValuesAndNameTheOption() throws {
        let dir = try Self.data.get()
        let base = ["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/never.h5"]
        #expect(try CLI.run(base + ["--steps", "-5"]).stderr == "Error: --steps must be >= 0, got -5\n")
        #expect(try CLI.run(base + ["--warmup", "-1"]).stderr == "Error: --warmup must be >= 0, got -1\n")
        #expect(try CLI.run(base + ["--hidden", "-8"]).stderr == "Error: --hidden must be >= 1, got -8\n")
        #expect(try CLI.run(base + ["--lr", "-0.1"]).stderr == "Error: --lr must be > 0, got -0.1\n")
        #expect(try CLI.run(base + ["--threads", "-2"]).stderr == "Error: --threads must be >= 1, got -2\n")
        #expect(try CLI.run(["bench", "--steps", "-1"]).stderr == "Error: --steps must be >= 0, got -1\n")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.h5"))
    }
}

/// `calm pretrain --data-vocabulary`: the model stores only the tokens its data uses, and
/// every command that reads models handles it (or, for export, says why it cannot).
@Suite("calm pretrain --data-vocabulary", .serialized)
struct DataVocabularyCLITests {
    @Test func storesTheDataTokensAndEveryCommandReadsIt() throws {
        let dir = try PretrainCLITests.data.get()
        let letters = try PretrainCLITests.lettersAndDigits(in: dir)
        let model = "\(dir)/subset.h5"
        let run = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", model, "--steps", "30", "--warmup", "2",
                               "--tokenizer-from", letters, "--data-vocabulary"] + PretrainCLITests.model)
        #expect(run.status == 0, "\(run.stderr)")
        let config = try ModelCheckpoint.load(model).model.config
        let stored = try #require(config.storedTokens)
        #expect(stored.count < config.vocabSize)
        #expect(run.stderr.contains("stores \(stored.count) of \(config.vocabSize) tokens"))

        let eval = try CLI.run(["eval", "--model", model, "--data", "\(dir)/train.jsonl", "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        // Letters are not stored: they read the shared row and are never generated.
        let generated = try CLI.run(["generate", "--model", model, "--prompt", "abc 3 +", "--max-tokens", "4"])
        #expect(generated.status == 0, "\(generated.stderr)")
        #expect(!generated.stdout.dropFirst("abc 3 +".count).contains { $0.isLetter })

        let export = try CLI.run(["export", model, "\(dir)/hf"])
        #expect(export.status != 0)
        #expect(export.stderr.contains("stored_tokens"), "\(export.stderr)")
        let resumed = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/r.h5", "--resume", model,
                                   "--steps", "40", "--data-vocabulary"])
        #expect(resumed.status != 0 && resumed.stderr.contains("--data-vocabulary"), "\(resumed.stderr)")
        let both = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/z.h5", "--data-vocabulary",
                                "--zero-unseen-embeddings"])
        #expect(both.status != 0 && both.stderr.contains("give one"), "\(both.stderr)")
    }
}

/// `calm pretrain --head-from ANCHOR`: the expert's output head is a frozen projection of the
/// anchor's, kept frozen on resume; the input embedding trains.
@Suite("calm pretrain --head-from", .serialized)
struct AnchoredHeadCLITests {
    @Test func headStaysTheAnchorsProjectionThroughTrainingAndResume() throws {
        let dir = try PretrainCLITests.data.get()
        let letters = try PretrainCLITests.lettersAndDigits(in: dir)
        let anchor = "\(dir)/head-anchor.h5"
        let made = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", anchor, "--steps", "0",
                                "--tokenizer-from", letters] + PretrainCLITests.model)
        #expect(made.status == 0, "\(made.stderr)")
        let expertFlags = ["--seq-len", "12", "--layers", "1", "--hidden", "8", "--heads", "2", "--batch-size", "4", "--warmup", "2"]
        let first = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/e1.h5", "--steps", "15",
                                 "--tokenizer-from", anchor, "--head-from", anchor, "--data-vocabulary"] + expertFlags)
        #expect(first.status == 0, "\(first.stderr)")
        let untrained = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/e0.h5", "--steps", "0",
                                     "--tokenizer-from", anchor, "--head-from", anchor, "--data-vocabulary"] + expertFlags)
        #expect(untrained.status == 0, "\(untrained.stderr)")
        let resumed = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/e2.h5", "--resume", "\(dir)/e1.h5",
                                   "--steps", "25"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let (start, trained, more) = (try ModelCheckpoint.load("\(dir)/e0.h5").model, try ModelCheckpoint.load("\(dir)/e1.h5").model,
                                      try ModelCheckpoint.load("\(dir)/e2.h5").model)
        let head = try #require(start.lmHead)
        #expect(head.data.contains { $0 != 0 })
        #expect(trained.lmHead?.data == head.data && more.lmHead?.data == head.data)
        // The input embedding starts at the same rows and trains.
        #expect(start.tokenEmbedding.data == head.data)
        #expect(trained.tokenEmbedding.data != head.data && more.tokenEmbedding.data != trained.tokenEmbedding.data)
    }

    @Test func refusesWhatCannotWork() throws {
        let dir = try PretrainCLITests.data.get()
        try "0123456789 +".write(toFile: "\(dir)/digits.txt", atomically: true, encoding: .utf8)
        let anchor = "\(dir)/narrow-anchor.h5"
        let made = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", anchor, "--steps", "0",
                                "--tokenizer-from", "\(dir)/digits.txt", "--hidden", "8", "--heads", "2", "--layers", "1"])
        #expect(made.status == 0, "\(made.stderr)")
        let base = ["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/never.h5", "--steps", "1", "--head-from", anchor]
        let otherTokenizer = try CLI.run(base + ["--hidden", "8", "--heads", "2", "--layers", "1"])
        #expect(otherTokenizer.status != 0 && otherTokenizer.stderr.contains("tokenizer differs"), "\(otherTokenizer.stderr)")
        let wider = try CLI.run(base + ["--tokenizer-from", anchor, "--hidden", "16", "--heads", "2", "--layers", "1"])
        #expect(wider.status != 0 && wider.stderr.contains("exceeds the anchor's 8"), "\(wider.stderr)")
        #expect(wider.stderr.split(separator: "\n").count == 1, "\(wider.stderr)")
        let resumed = try CLI.run(base + ["--resume", anchor])
        #expect(resumed.status != 0 && resumed.stderr.contains("--head-from applies to a new model"), "\(resumed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.h5"))
    }
}
