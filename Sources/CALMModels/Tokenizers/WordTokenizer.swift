import Foundation

/// Word-level tokenizer in the GPT-2 style: text is split into pieces that each carry at most
/// one leading space — a run of letters (" abc"), a single digit (" 7", "0") or any other single
/// character (" +", ">") — and each piece is one token. Decoding concatenates pieces, so
/// `decode(encode(s)) == s` for any text made of known pieces.
///
/// The key-value suites use it so that every key is one token (as the paper's keys are single
/// entries of its model's vocabulary) while numbers stay split into digits.
public struct WordTokenizer: Tokenizer, Equatable {
    public static let kind = "word"
    public static let specialTokens = ["<pad>", "<bos>", "<eos>", "<unk>"]

    public let pieces: [String]
    private let ids: [String: Int]

    public var vocabularySize: Int { Self.specialTokens.count + pieces.count }
    public var padID: Int? { 0 }
    public var bosID: Int? { 1 }
    public var eosID: Int? { 2 }
    public var unknownID: Int { 3 }

    public init(pieces: [String]) {
        var seen = Set<String>()
        self.pieces = pieces.filter { seen.insert($0).inserted }
        var map: [String: Int] = [:]
        for (i, p) in self.pieces.enumerated() { map[p] = Self.specialTokens.count + i }
        ids = map
    }

    /// A tokenizer over every piece that occurs in `corpus`, sorted.
    public init(corpus: String) {
        self.init(pieces: Set(Self.split(corpus)).sorted())
    }

    /// Splits text into pieces (see the type's documentation).
    public static func split(_ text: String) -> [String] {
        var out: [String] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            var piece = ""
            if chars[i] == " ", i + 1 < chars.count, chars[i + 1] != " " {
                piece.append(" ")
                i += 1
            }
            if chars[i].isLetter {
                while i < chars.count, chars[i].isLetter { piece.append(chars[i]); i += 1 }
            } else {
                piece.append(chars[i])
                i += 1
            }
            out.append(piece)
        }
        return out
    }

    public func encode(_ text: String) -> [Int] {
        Self.split(text).map { ids[$0] ?? unknownID }
    }

    public func decode(_ ids: [Int]) -> String {
        let offset = Self.specialTokens.count
        return ids.compactMap { $0 >= offset && $0 < vocabularySize ? pieces[$0 - offset] : nil }.joined()
    }

    private struct Serialized: Codable {
        var type: String
        var specials: [String]
        var pieces: [String]
    }

    public func serialized() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(Serialized(type: Self.kind, specials: Self.specialTokens, pieces: pieces)), as: UTF8.self)
    }

    public init(json: Data) throws {
        guard let s = try? JSONDecoder().decode(Serialized.self, from: json) else {
            throw TokenizerError(message: "malformed word tokenizer description")
        }
        guard s.specials == Self.specialTokens else {
            throw TokenizerError(message: "word tokenizer has specials \(s.specials), expected \(Self.specialTokens)")
        }
        guard Set(s.pieces).count == s.pieces.count, !s.pieces.contains("") else {
            throw TokenizerError(message: "word tokenizer lists an empty or repeated piece")
        }
        self.init(pieces: s.pieces)
    }

    public static func == (a: WordTokenizer, b: WordTokenizer) -> Bool { a.pieces == b.pieces }
}
