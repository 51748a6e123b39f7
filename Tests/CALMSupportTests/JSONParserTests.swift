import CALMSupport
import Foundation
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    /// The direct parser reads what `Decodable` reads, on every Hugging Face fixture file and on
    /// escapes, numbers and nesting; malformed text is refused.
    @Test func agreesWithDecodable() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/hf").standardized
        var files = 0
        for case let url as URL in FileManager.default.enumerator(at: fixtures, includingPropertiesForKeys: nil)!
        where url.pathExtension == "json" {
            let data = try Data(contentsOf: url)
            #expect(JSONValue.parse(data) == (try JSONDecoder().decode(JSONValue.self, from: data)), "\(url.lastPathComponent)")
            files += 1
        }
        #expect(files >= 14)
        let text = #"{"a": [1, -2, 3.5, 1e3, -0.25E-2, true, false, null], "s": "tab\tq\"\\ \u00e9 \ud83d\ude00 /\/", "n": {"m": {}}, "e": []}"#
        #expect(JSONValue.parse(Data(text.utf8)) == (try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))))
        #expect(JSONValue.parse(Data("7".utf8)) == .int(7))
        #expect(JSONValue.parse(Data("7.0".utf8)) == .int(7))  // whole numbers read as integers, as Decodable does
        #expect(JSONValue.parse(Data("7.5".utf8)) == .double(7.5))
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"\\x\"", "01", "1.", "tru", "\"\\ud800\"", "[1] 2", "\"a\nb\""] {
            #expect(JSONValue.parse(Data(bad.utf8)) == nil, "\(bad)")
        }
        #expect(JSONValue.parse(Data(String(repeating: "[", count: 600).utf8)) == nil)
    }
}
