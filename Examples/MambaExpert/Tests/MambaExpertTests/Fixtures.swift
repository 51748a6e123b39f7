import CALMHuggingFace
import Foundation
import MambaExpert

/// Paths of the committed fixtures (from scripts/make_mamba_fixtures.py) and the repository's.
enum Fixtures {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    static let repository = URL(fileURLWithPath: example).appendingPathComponent("../..").standardized.path
    static func mamba(_ name: String) -> String { "\(example)/Tests/Fixtures/\(name)" }
    /// The tiny Hugging Face llama whose tokenizer the Mamba fixtures share: the anchor.
    static let llama = "\(repository)/Tests/Fixtures/hf/llama"
    static let names = ["mamba-tied", "mamba-untied"]

    /// The batch the golden outputs were computed for, `(B, T)`.
    static func inputIDs(_ name: String) throws -> [[Int]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(mamba(name))/golden.json"))
        struct Golden: Decodable { var input_ids: [[Int]] }
        return try JSONDecoder().decode(Golden.self, from: data).input_ids
    }

    static func golden(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile.open("\(mamba(name))/golden.safetensors")
    }
}

func makeTemporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-mamba-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Largest absolute difference of two equally long arrays (infinity when the lengths differ).
func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

