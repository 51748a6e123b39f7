import Foundation

/// One token per Unicode character, plus `<pad>` (0), `<bos>` (1), `<eos>` (2) and `<unk>` (3).
/// Used by the synthetic suites, where every model must share one vocabulary.
public struct CharTokenizer: Tokenizer, Equatable {
    public static let kind = "char"
    public static let specialTokens = ["<pad>", "<bos>", "<eos>", "<unk>"]

    /// The ordinary characters, in id order after the specials.
    public let characters: [Character]
    private let ids: [Character: Int]

    public var vocabularySize: Int { Self.specialTokens.count + characters.count }
    public var padID: Int? { 0 }
    public var bosID: Int? { 1 }
    public var eosID: Int? { 2 }
    public var unknownID: Int { 3 }

    /// A tokenizer over the given characters (duplicates removed, order kept).
    public init(characters: [Character]) {
        var seen = Set<Character>()
        self.characters = characters.filter { seen.insert($0).inserted }
        var map: [Character: Int] = [:]
        for (i, c) in self.characters.enumerated() { map[c] = Self.specialTokens.count + i }
        ids = map
    }

    /// A tokenizer over every character that occurs in `corpus`, sorted.
    public init(corpus: String) {
        self.init(characters: Set(corpus).sorted())
    }

    public func encode(_ text: String) -> [Int] {
        text.map { ids[$0] ?? unknownID }
    }

    public func decode(_ ids: [Int]) -> String {
        let offset = Self.specialTokens.count
        return String(ids.compactMap { id in
            id >= offset && id < vocabularySize ? characters[id - offset] : nil
        })
    }

    private struct Serialized: Codable {
        var type: String
        var specials: [String]
        var characters: [String]
    }

    public func serialized() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let s = Serialized(type: Self.kind, specials: Self.specialTokens, characters: characters.map(String.init))
        return String(decoding: try encoder.encode(s), as: UTF8.self)
    }

    public init(json: Data) throws {
        guard let s = try? JSONDecoder().decode(Serialized.self, from: json) else {
            throw TokenizerError(message: "malformed char tokenizer description")
        }
        guard s.specials == Self.specialTokens else {
            throw TokenizerError(message: "char tokenizer has specials \(s.specials), expected \(Self.specialTokens)")
        }
        var chars: [Character] = []
        for c in s.characters {
            guard c.count == 1, let ch = c.first else {
                throw TokenizerError(message: "char tokenizer entry \"\(c)\" is not one character")
            }
            chars.append(ch)
        }
        guard Set(chars).count == chars.count else {
            throw TokenizerError(message: "char tokenizer lists a character twice")
        }
        self.init(characters: chars)
    }

    public static func == (a: CharTokenizer, b: CharTokenizer) -> Bool { a.characters == b.characters }
}
