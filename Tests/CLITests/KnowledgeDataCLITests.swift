import CALMSuites
import Foundation
import Testing

@Suite("calm data knowledge", .serialized)
struct KnowledgeDataCLITests {
    static let small = ["--entities", "20", "--corpus-passes", "1", "--eval-examples", "10"]

    /// Questions use the anchor's chat template, names pass its tokenizer, and a facts file
    /// with other facts is never replaced without --force.
    @Test func writesTheSuiteInTheAnchorsChatFormat() throws {
        let dir = try makeTemporaryDirectory()
        let source = "\(dir)/hf"
        try FileManager.default.copyItem(atPath: "\(ConversionCLITests.fixtures)/llama", toPath: source)
        let template = "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '\\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
        try template.write(toFile: "\(source)/chat_template.jinja", atomically: true, encoding: .utf8)
        #expect(try CLI.run(["convert", source, "\(dir)/anchor.h5"]).status == 0)

        let run = try CLI.run(["data", "knowledge", "--out", "\(dir)/k", "--anchor", "\(dir)/anchor.h5"] + Self.small)
        #expect(run.status == 0, "\(run.stderr)")
        let facts = try KnowledgeFacts(jsonText: try String(contentsOfFile: "\(dir)/k/atlas.json", encoding: .utf8), path: "atlas.json")
        #expect(facts.promptFormat == "<|user|>{question}\n<|assistant|>")
        #expect(facts.entities.count == 20 && facts.heldIn.count == 4)
        let dc = try String(contentsOfFile: "\(dir)/k/atlas-dc.jsonl", encoding: .utf8)
        #expect(dc.contains("<|user|>") && dc.split(separator: "\n").count == 4 * 5 * 2)
        for file in ["atlas-corpus.txt", "atlas-recall.jsonl", "atlas-eval.jsonl", "atlas-eval-unseen.jsonl"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/k/\(file)"), "\(file)")
        }

        let other = try CLI.run(["data", "knowledge", "--out", "\(dir)/k", "--seed", "9"] + Self.small)
        #expect(other.status != 0 && other.stderr.contains("atlas.json") && other.stderr.contains("--force"), "\(other.stderr)")
        let forced = try CLI.run(["data", "knowledge", "--out", "\(dir)/k", "--seed", "9", "--force"] + Self.small)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try String(contentsOfFile: "\(dir)/k/atlas.json", encoding: .utf8).contains("Question: {question}"))
    }
}
