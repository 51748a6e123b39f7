import CALMTokenizers
import Foundation
import Testing

/// Compares against the ids the Python `tokenizers` library produced for the committed
/// multilingual sample (scripts/make_hf_fixtures.py).
@Suite("Hugging Face tokenizers")
struct HuggingFaceTokenizerTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/hf").standardized.path

    struct Expected: Decodable {
        let sample_ids: [Int]
        let sample_ids_with_specials: [Int]
        let decoded: String
    }

    static func expected(_ name: String) throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(name)/tokens.json")))
    }

    static var sample: String {
        get throws { try String(contentsOfFile: "\(fixtures)/sample.txt", encoding: .utf8) }
    }

    @Test(arguments: ["gpt2", "llama", "qwen2", "llama2", "mistral", "gemma"])
    func idsMatchTheReference(name: String) throws {
        let tokenizer = try HuggingFaceTokenizer.load(directory: "\(Self.fixtures)/\(name)")
        let expected = try Self.expected(name)
        let ids = tokenizer.encode(try Self.sample)
        #expect(ids == expected.sample_ids, "\(name): first difference at \(Array(zip(ids, expected.sample_ids)).firstIndex { $0 != $1 } ?? min(ids.count, expected.sample_ids.count)) of \(ids.count) vs \(expected.sample_ids.count)")
        let withSpecials = (tokenizer.bosID.map { [$0] } ?? []) + ids
        #expect(withSpecials == expected.sample_ids_with_specials)
        #expect(tokenizer.decode(ids) == expected.decoded)
    }

    @Test func serializedTokenizerRoundTrips() throws {
        let tokenizer = try HuggingFaceTokenizer.load(directory: "\(Self.fixtures)/llama2")
        let restored = try TokenizerRegistry.load(json: try tokenizer.serialized())
        let sample = try Self.sample
        #expect(restored.encode(sample) == tokenizer.encode(sample))
        #expect(restored.bosID == tokenizer.bosID && restored.eosID == tokenizer.eosID)
        #expect(restored.fingerprint == tokenizer.fingerprint)
    }

    @Test func unsupportedComponentsAreNamed() throws {
        let text = try String(contentsOfFile: "\(Self.fixtures)/gpt2/tokenizer.json", encoding: .utf8)
        let broken = text.replacingOccurrences(of: "\"type\": \"BPE\"", with: "\"type\": \"WordPiece\"")
        #expect(broken != text)
        #expect {
            _ = try HuggingFaceTokenizer(tokenizerJSON: broken)
        } throws: { "\($0)".contains("WordPiece") && "\($0)".contains("supported: BPE") }
        #expect(throws: TokenizerError.self) { _ = try HuggingFaceTokenizer(tokenizerJSON: "{\"model\": 3") }
    }
}
