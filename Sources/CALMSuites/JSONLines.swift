import CALMSupport
import CALMTraining
import Foundation

/// Writes prompt/completion records as JSONL (keys sorted: the same records give the same
/// bytes), atomically.
func writeJSONLines(_ records: [TrainingData.PromptCompletion], to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let lines = try records.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
    try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: path)
}
