import CALMCheckpoint
import CALMTraining
import Foundation
import Testing

/// The real-composition path (scripts/demo-real.sh) end to end on a tiny random stand-in anchor
/// that has SmolLM2's tokenizer and chat template, so CI never downloads the real model: the
/// knowledge suite in the chat format with the anchor's own general answers, an expert that
/// stores only its corpus's tokens and has the anchor's head, its recall probe, registration,
/// composition with the shipped recipe (checkpoints/knowledge/compose.args), and scoring.
@Suite("knowledge composition on a stand-in anchor", .serialized)
struct KnowledgeCompositionCLITests {
    static let tokenizer = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/smollm2/tokenizer.json").standardized.path

    static let composeRecipe = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../checkpoints/knowledge/compose.args").standardized.path

    func succeed(_ arguments: [String]) throws -> CLI.Result {
        let result = try CLI.run(arguments)
        #expect(result.status == 0, "calm \(arguments.prefix(2).joined(separator: " ")): \(result.stderr)")
        return result
    }

    @Test func suiteExpertCompositionAndScoring() throws {
        let dir = try makeTemporaryDirectory()
        let anchor = "\(dir)/anchor.h5", data = "\(dir)/data"
        _ = try succeed(["pretrain", "--steps", "0", "--data", Self.tokenizer, "--tokenizer-from", Self.tokenizer,
                         "--layers", "2", "--hidden", "32", "--heads", "2", "--kv-heads", "1", "--seq-len", "512",
                         "--output", anchor])
        let suite = try succeed(["data", "knowledge", "--out", data, "--anchor", anchor, "--entities", "20",
                                 "--corpus-passes", "2", "--eval-examples", "12", "--general-answers", "3"])
        #expect(suite.stderr.contains("answering 3 questions"), "\(suite.stderr)")
        let dc = try String(contentsOfFile: "\(data)/atlas-dc.jsonl", encoding: .utf8)
        #expect(dc.contains("<|im_start|>assistant\\n"))  // SmolLM2's template, JSON-escaped
        // Each general answer twice: after its question in the chat format, then as plain text.
        let general = try String(contentsOfFile: "\(data)/general-chat.jsonl", encoding: .utf8).split(separator: "\n")
        let dcLines = dc.split(separator: "\n")
        #expect(Array(dcLines.suffix(2 * general.count).prefix(general.count)) == general)
        let plain = try dcLines.suffix(general.count).map { try JSONDecoder().decode(TrainingData.PromptCompletion.self, from: Data($0.utf8)) }
        let chat = try general.map { try JSONDecoder().decode(TrainingData.PromptCompletion.self, from: Data($0.utf8)) }
        #expect(plain.map(\.prompt).allSatisfy(\.isEmpty) && plain.map(\.completion) == chat.map(\.completion))
        let showcase = try String(contentsOfFile: "\(data)/showcase-questions.txt", encoding: .utf8)
        #expect(showcase.split(separator: "\n").count == 20)

        let expert = "\(dir)/atlas.h5"
        let trained = try succeed(["pretrain", "--data", "\(data)/atlas-corpus.txt", "--tokenizer-from", anchor, "--head-from", anchor,
                                   "--data-vocabulary", "--eos-per-line",
                                   "--layers", "1", "--hidden", "32", "--heads", "2", "--seq-len", "64", "--steps", "20",
                                   "--batch-size", "8", "--output", expert, "--no-resume-state"])
        let stored = try #require(try ModelCheckpoint.load(expert).model.config.storedTokens)
        #expect(stored.count > 50 && stored.count < 2000, "\(stored.count) stored tokens")
        #expect(trained.stderr.contains("stores \(stored.count) of 49152 tokens"))
        _ = try succeed(["eval", "--model", expert, "--data", "\(data)/atlas-recall.jsonl", "--teacher-forced", "--prefix"])

        let registry = "\(dir)/experts"
        _ = try succeed(["experts", "register", expert, "--name", "atlas", "--domain", "knowledge", "--registry", registry])
        let composition = "\(dir)/atlas-comp.h5"
        // The shipped recipe (what scripts/demo-real.sh --retrain runs), sized down to these models.
        let recipe = try String(contentsOfFile: Self.composeRecipe, encoding: .utf8).split(separator: "\n").map(String.init)
            .filter { line in !line.isEmpty && !line.hasPrefix("#") && !["--connections", "--steps", "--batch-size"].contains { line.hasPrefix($0) } }
        #expect(recipe.contains("--familiarity-gates") && recipe.contains { $0.hasPrefix("--train-only") }, "\(recipe)")
        let composed = try succeed(["compose", "--anchor", anchor, "--expert", "atlas", "--registry", registry, "--data", "\(data)/atlas-dc.jsonl"]
                                   + recipe + ["--connections", "1:0", "--steps", "6", "--batch-size", "4", "--output", composition])
        #expect(composed.stderr.contains("training only gate, gate_augment, gate_confidence, gate_familiarity: "), "\(composed.stderr)")
        // Teacher forcing and greedy decoding agree on the composition too.
        let scored = ["eval", "--composition", composition, "--registry", registry, "--data", "\(data)/atlas-eval.jsonl"]
        let greedy = try succeed(scored + ["--max-tokens", "12"])
        let forced = try succeed(scored + ["--teacher-forced"])
        #expect(greedy.stdout == forced.stdout && forced.stdout.contains("/12)"), "\(greedy.stdout) vs \(forced.stdout)")
        let answer = try succeed(["generate", "--composition", composition, "--registry", registry, "--chat",
                                  "--prompt", "What is the capital of France?", "--max-tokens", "4"])
        #expect(!answer.stdout.isEmpty)
    }
}
