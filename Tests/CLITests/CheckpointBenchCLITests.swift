import Foundation
import Testing

@Suite("calm bench --model")
struct CheckpointBenchCLITests {
    /// The four figures come back as JSON with sane values, for a model and a composition alike;
    /// a request longer than the context is refused up front.
    @Test func reportsLoadPrefillDecodeAndMemory() throws {
        let (_, model) = try CLITests.trained.get()
        let result = try CLI.run(["bench", "--model", model, "--prompt-tokens", "6", "--new-tokens", "4", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Double])
        #expect(Set(report.keys) == ["load_s", "prefill_tokens_per_s", "decode_tokens_per_s", "peak_rss_mb"])
        #expect(report.values.allSatisfy { $0 > 0 && $0.isFinite })

        let dir = try CompositionCLITests.setup.get()
        let composed = try CLI.run(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "kv", "--data", "\(dir)/dc.jsonl",
                                    "--output", "\(dir)/bench.h5", "--steps", "2", "--registry", "\(dir)/experts"])
        #expect(composed.status == 0, "\(composed.stderr)")
        let composition = try CLI.run(["bench", "--composition", "\(dir)/bench.h5", "--prompt-tokens", "4", "--new-tokens", "4", "--json"])
        #expect(composition.status == 0 && composition.stdout.contains("decode_tokens_per_s"), "\(composition.stderr)")

        let tooLong = try CLI.run(["bench", "--model", model, "--prompt-tokens", "600", "--new-tokens", "4"])
        #expect(tooLong.status != 0 && tooLong.stderr.contains("exceeds the model's context"), "\(tooLong.stderr)")
    }
}
