import Foundation
import Testing

/// Generation within the model's context, and words the tokenizer does not know.
@Suite("calm generate: context limit and unknown words", .serialized)
struct GenerateCLITests {
    /// A model with a context of 8 trained on plain text, which holds no end-of-sequence token,
    /// so generation only stops at the context limit.
    static let model: Result<String, any Error> = Result {
        let dir = try makeTemporaryDirectory()
        try String(repeating: "abcd", count: 200).write(toFile: "\(dir)/text.txt", atomically: true, encoding: .utf8)
        let r = try CLI.run(["pretrain", "--data", "\(dir)/text.txt", "--output", "\(dir)/m.h5", "--seq-len", "8", "--steps", "40",
                             "--layers", "1", "--hidden", "16", "--heads", "2", "--lr", "1e-2", "--batch-size", "8"])
        guard r.status == 0 else { throw CLITests.CLIFailure(r.stderr) }
        return "\(dir)/m.h5"
    }

    static let shippedRegistry = ["--registry", "\(CLI.root)/checkpoints/experts"]

    @Test func theDefaultRunsToTheContextLimitWithANote() throws {
        let model = try Self.model.get()
        let run = try CLI.run(["generate", "--model", model, "--prompt", "ab"])
        #expect(run.status == 0, "\(run.stderr)")
        // <bos> and two characters leave room for 5 of the 8 positions.
        #expect(run.stdout.trimmingCharacters(in: .newlines).count == 5, "\(run.stdout)")
        #expect(run.stderr.contains("context limit"), "\(run.stderr)")

        let clamped = try CLI.run(["generate", "--model", model, "--prompt", "ab", "--max-tokens", "100"])
        #expect(clamped.status == 0 && clamped.stderr.contains("context limit"), "\(clamped.stderr)")
        #expect(clamped.stdout == run.stdout)

        let short = try CLI.run(["generate", "--model", model, "--prompt", "ab", "--max-tokens", "2"])
        #expect(short.status == 0 && !short.stderr.contains("context limit"))
        #expect(short.stdout.trimmingCharacters(in: .newlines).count == 2)

        let full = try CLI.run(["generate", "--model", model, "--prompt", "abcdabcd"])
        #expect(full.status != 0 && full.stderr.contains("--prompt") && full.stderr.split(separator: "\n").count == 1)
    }

    @Test func theShippedCompositionAnswersWithoutMaxTokens() throws {
        let run = try CLI.run(["generate", "--composition", "\(CLI.root)/checkpoints/compositions/kv-arithmetic.h5",
                               "--prompt", "aaix + aazbc - adtb ="] + Self.shippedRegistry)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Int(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) != nil, "\(run.stdout)")
        #expect(!run.stderr.contains("<unk>"))
    }

    @Test func negativeValuesReachTheRangeCheck() throws {
        let model = try Self.model.get()
        let run = try CLI.run(["generate", "--model", model, "--prompt", "ab", "--max-tokens", "-1"])
        #expect(run.status != 0 && run.stderr == "Error: --max-tokens must be >= 0, got -1\n", "\(run.stderr)")
        let temperature = try CLI.run(["generate", "--model", model, "--prompt", "ab", "--temperature", "-0.5"])
        #expect(temperature.stderr.contains("--temperature must be >= 0.0, got -0.5"), "\(temperature.stderr)")
    }

    @Test func unknownWordsAreNamedOnce() throws {
        let anchor = "\(CLI.root)/checkpoints/anchor.h5"
        let run = try CLI.run(["generate", "--model", anchor, "--prompt", "hello world"])
        #expect(run.status == 0, "\(run.stderr)")
        let warnings = run.stderr.split(separator: "\n").filter { $0.hasPrefix("warning:") }
        #expect(warnings.count == 1 && warnings[0].contains("\" hello\", \" world\"") && warnings[0].contains("<unk>"), "\(run.stderr)")

        let known = try CLI.run(["generate", "--model", anchor, "--prompt", "1 + 2 =", "--max-tokens", "2"])
        #expect(known.status == 0 && !known.stderr.contains("warning"), "\(known.stderr)")

        let dir = try makeTemporaryDirectory()
        try "{\"prompt\": \"qqqqqqq hello + 1 =\", \"completion\": \" 1\"}\n{\"prompt\": \"hello =\", \"completion\": \" 1\"}\n"
            .write(toFile: "\(dir)/e.jsonl", atomically: true, encoding: .utf8)
        let eval = try CLI.run(["eval", "--model", anchor, "--data", "\(dir)/e.jsonl"])
        let evalWarnings = eval.stderr.split(separator: "\n").filter { $0.hasPrefix("warning:") }
        #expect(eval.status == 0 && evalWarnings.count == 1 && evalWarnings[0].contains("\" qqqqqqq\", \" hello\""), "\(eval.stderr)")

        let forward = try CLI.run(["forward", "--model", anchor, "--text", "hello 1", "--output", "\(dir)/l.h5"])
        #expect(forward.status == 0 && forward.stderr.contains("\" hello\""), "\(forward.stderr)")
    }
}
