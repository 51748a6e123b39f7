import CALMModels
import CALMTensor
import CALMTokenizers
import Foundation

/// One training sequence: token ids and which of them are prediction targets.
public struct Example: Sendable, Equatable {
    public var ids: [Int]
    /// `lossMask[t]`: token t is predicted (from tokens before it) and scored.
    public var lossMask: [Bool]

    public init(ids: [Int], lossMask: [Bool]) {
        precondition(ids.count == lossMask.count)
        self.ids = ids
        self.lossMask = lossMask
    }
}

/// A malformed data file; the message names the file (and line).
public struct DataError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}

/// A JSONL record longer than the training window: its own type, so a caller can say how to
/// fix it in its own terms (a larger window, a tokenizer that makes fewer tokens).
public struct RecordTooLongError: Error, CustomStringConvertible {
    public var path: String
    /// 1-based record number.
    public var record: Int
    public var tokens: Int
    public var sequenceLength: Int
    public var description: String {
        "\(path): record \(record) has \(tokens) tokens, more than the sequence length \(sequenceLength) + 1"
    }
}

/// A training or evaluation set.
///
/// - Plain text (any extension but `.jsonl`): tokenized whole and cut into windows of
///   `sequenceLength` tokens, each after `<bos>`; every token but `<bos>` is a target. With
///   `eosPerLine`, each line is a document of its own that ends with `<eos>` before its line
///   break (`statement<eos>\n`), as a chat turn ends: the model learns where a statement ends,
///   and reads a line break as the start of the next one.
/// - JSONL: one `{"prompt": ..., "completion": ...}` object per line, encoded as
///   `<bos> prompt completion <eos>`; only completion tokens (and `<eos>`) are targets.
public struct TrainingData: Sendable {
    public var examples: [Example]

    public init(examples: [Example]) { self.examples = examples }

    public static func load(_ path: String, tokenizer: any Tokenizer, sequenceLength: Int, eosPerLine: Bool = false) throws -> TrainingData {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError("\(path): cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DataError("\(path): not UTF-8 text")
        }
        let set = path.hasSuffix(".jsonl")
            ? try fromJSONL(text, path: path, tokenizer: tokenizer, sequenceLength: sequenceLength)
            : fromText(text, tokenizer: tokenizer, sequenceLength: sequenceLength, lineEnd: try lineEnd(eosPerLine, tokenizer, path))
        guard !set.examples.isEmpty else { throw DataError("\(path): no training examples (is the file empty?)") }
        return set
    }

    private static func lineEnd(_ eosPerLine: Bool, _ tokenizer: any Tokenizer, _ path: String) throws -> Int? {
        guard eosPerLine else { return nil }
        guard let eos = tokenizer.eosID else { throw DataError("\(path): one document per line needs a tokenizer with an end-of-sequence token") }
        return eos
    }

    /// `lineEnd`: each non-blank line is a document ending with this token, then the line break
    /// (see `load`).
    public static func fromText(_ text: String, tokenizer: any Tokenizer, sequenceLength: Int, lineEnd: Int? = nil) -> TrainingData {
        var ids: [Int]
        if let lineEnd {
            ids = []
            let lineBreak = tokenizer.encode("\n")
            for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
                ids += tokenizer.encode(String(line))
                ids.append(lineEnd)
                ids += lineBreak
            }
        } else {
            ids = tokenizer.encode(text)
        }
        let bos = tokenizer.bosID.map { [$0] } ?? []
        // Every window starts with <bos>, as generation does.
        let span = sequenceLength + 1 - bos.count
        var examples: [Example] = []
        var start = 0
        while start + 1 < ids.count {
            let window = bos + ids[start..<min(ids.count, start + span)]
            examples.append(Example(ids: window, lossMask: [false] + Array(repeating: true, count: window.count - 1)))
            start += span
        }
        return TrainingData(examples: examples)
    }

    /// A prompt/completion pair as one example.
    public static func example(prompt: String, completion: String, tokenizer: any Tokenizer) -> Example {
        let eos = tokenizer.eosID.map { [$0] } ?? []
        let p = tokenizer.encodeWithBOS(prompt)
        let c = tokenizer.encode(completion) + eos
        return Example(ids: p + c, lossMask: Array(repeating: false, count: p.count) + Array(repeating: true, count: c.count))
    }

    public struct PromptCompletion: Codable, Sendable, Equatable {
        public var prompt: String
        public var completion: String
        public init(prompt: String, completion: String) {
            self.prompt = prompt
            self.completion = completion
        }
    }

    /// Parses JSONL prompt/completion records; errors name the file and line.
    public static func records(_ text: String, path: String) throws -> [PromptCompletion] {
        var records: [PromptCompletion] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            do {
                records.append(try JSONDecoder().decode(PromptCompletion.self, from: Data(trimmed.utf8)))
            } catch {
                throw DataError("\(path):\(index + 1): malformed JSON line (expected {\"prompt\": ..., \"completion\": ...})")
            }
        }
        return records
    }

    public static func fromJSONL(_ text: String, path: String, tokenizer: any Tokenizer, sequenceLength: Int) throws -> TrainingData {
        var examples: [Example] = []
        for (n, record) in try records(text, path: path).enumerated() {
            let example = Self.example(prompt: record.prompt, completion: record.completion, tokenizer: tokenizer)
            guard example.ids.count <= sequenceLength + 1 else {
                throw RecordTooLongError(path: path, record: n + 1, tokens: example.ids.count, sequenceLength: sequenceLength)
            }
            examples.append(example)
        }
        return TrainingData(examples: examples)
    }

    public var tokenCount: Int { examples.reduce(0) { $0 + $1.ids.count } }
}

/// Draws batches in a seeded random order, one pass (epoch) after another. Its position is
/// part of the saved training state, so a resumed run sees exactly the batches it would have.
public struct BatchSampler: Codable, Sendable, Equatable {
    public let seed: UInt64
    public let batchSize: Int
    public private(set) var epoch = 0
    public private(set) var position = 0

    public init(seed: UInt64, batchSize: Int) {
        self.seed = seed
        self.batchSize = batchSize
    }

    private func permutation(_ count: Int) -> [Int] {
        var generator = SeededGenerator(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        return order
    }

    /// Indices of the next batch among `count` examples.
    public mutating func next(count: Int) -> [Int] {
        var picked: [Int] = []
        var order = permutation(count)
        while picked.count < min(batchSize, count) {
            if position >= count {
                epoch += 1
                position = 0
                order = permutation(count)
            }
            picked.append(order[position])
            position += 1
        }
        return picked
    }
}

/// Right-pads examples into one batch; padding is never a target.
public func collate(_ examples: [Example], padID: Int) -> (tokens: TokenBatch, lossMask: [Bool]) {
    let length = examples.map(\.ids.count).max() ?? 0
    var ids: [Int] = [], mask: [Bool] = []
    ids.reserveCapacity(examples.count * length)
    for e in examples {
        ids += e.ids + Array(repeating: padID, count: length - e.ids.count)
        mask += e.lossMask + Array(repeating: false, count: length - e.ids.count)
    }
    return (TokenBatch(ids: ids, batch: examples.count, length: length), mask)
}
