import Foundation

/// Word-level tokenizer in the GPT-2 style: text is split into pieces that each carry at most
/// one leading space — a run of letters (" abc"), a single digit (" 7", "0") or any other single
/// character (" +", ">") — and each piece is one token. Decoding concatenates pieces, so
/// `decode(encode(s)) == s` for any text made of known pieces.
///
/// The key-value suites use it so that every key is one token (as the paper's keys are single
/// entries of its model's vocabulary) while numbers stay split into digits.
///
/// With `addPrefixSpace` (as SentencePiece's dummy prefix), text that does not start with a
/// space is encoded as if it did, so a word is the same token at the start of a text and after
/// a space; `decode` drops that one leading space again.
public struct WordTokenizer: Tokenizer, Equatable {
    public static let kind = "word"
    public static let specialTokens = ["<pad>", "<bos>", "<eos>", "<unk>"]

    public let pieces: [String]
    public let addPrefixSpace: Bool
    private let ids: [String: Int]

    public var vocabularySize: Int { Self.specialTokens.count + pieces.count }
    public var padID: Int? { 0 }
    public var bosID: Int? { 1 }
    public var eosID: Int? { 2 }
    public var unknownID: Int { 3 }

    public init(pieces: [String], addPrefixSpace: Bool = false) {
        self.addPrefixSpace = addPrefixSpace
        var seen = Set<String>()
        self.pieces = pieces.filter { seen.insert($0).inserted }
        var map: [String: Int] = [:]
        for (i, p) in self.pieces.enumerated() { map[p] = Self.specialTokens.count + i }
        ids = map
    }

    /// A tokenizer over every piece that occurs in `corpus`, sorted.
    public init(corpus: String, addPrefixSpace: Bool = false) {
        self.init(pieces: Set(Self.split(corpus)).sorted(), addPrefixSpace: addPrefixSpace)
    }

    /// The text as the splitter sees it (with the dummy prefix space when enabled).
    public func prepared(_ text: String) -> String {
        addPrefixSpace && !text.isEmpty && !text.hasPrefix(" ") ? " " + text : text
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
        Self.split(prepared(text)).map { ids[$0] ?? unknownID }
    }

    public func decode(_ ids: [Int]) -> String {
        let offset = Self.specialTokens.count
        let text = ids.compactMap { $0 >= offset && $0 < vocabularySize ? pieces[$0 - offset] : nil }.joined()
        return addPrefixSpace && text.hasPrefix(" ") ? String(text.dropFirst()) : text
    }

    private struct Serialized: Codable {
        var type: String
        var specials: [String]
        var pieces: [String]
        var addPrefixSpace: Bool?
        enum CodingKeys: String, CodingKey { case type, specials, pieces, addPrefixSpace = "add_prefix_space" }
    }

    public func serialized() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let s = Serialized(type: Self.kind, specials: Self.specialTokens, pieces: pieces, addPrefixSpace: addPrefixSpace ? true : nil)
        return String(decoding: try encoder.encode(s), as: UTF8.self)
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
        self.init(pieces: s.pieces, addPrefixSpace: s.addPrefixSpace ?? false)
    }

    public static func == (a: WordTokenizer, b: WordTokenizer) -> Bool {
        a.pieces == b.pieces && a.addPrefixSpace == b.addPrefixSpace
    }
}
