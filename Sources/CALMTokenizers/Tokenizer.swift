import CALMSupport
import Foundation

/// Maps text to token ids and back.
public protocol Tokenizer: Sendable {
    /// The type string stored in checkpoints ("char", ...).
    static var kind: String { get }
    var vocabularySize: Int { get }
    var bosID: Int? { get }
    var eosID: Int? { get }
    var padID: Int? { get }
    /// Token ids of `text`, without BOS/EOS.
    func encode(_ text: String) -> [Int]
    /// Text of `ids`; special tokens are dropped.
    func decode(_ ids: [Int]) -> String
    /// A self-contained JSON description, from which `TokenizerRegistry` rebuilds it.
    func serialized() throws -> String
    /// The Jinja chat template that came with the tokenizer, if any.
    var chatTemplate: String? { get }
    /// The text of a special token (e.g. "<s>" for `bosID`), for chat templates.
    func tokenText(_ id: Int) -> String?
}

extension Tokenizer {
    public var chatTemplate: String? { nil }
    public func tokenText(_ id: Int) -> String? { nil }

    /// The prompt for a chat turn: `user` (after an optional `system` message) rendered with the
    /// tokenizer's chat template, ending where the assistant's reply starts. The template writes
    /// every special token itself, so nothing is prepended (as in `apply_chat_template`).
    public func encodeChat(user: String, system: String? = nil) throws -> [Int] {
        guard let source = chatTemplate else { throw TokenizerError(message: "the tokenizer has no chat template") }
        let template = try ChatTemplate(source)
        let messages = (system.map { [ChatTemplate.Message(role: "system", content: $0)] } ?? [])
            + [ChatTemplate.Message(role: "user", content: user)]
        let text = try template.render(messages, addGenerationPrompt: true, bosToken: bosID.flatMap(tokenText) ?? "",
                                       eosToken: eosID.flatMap(tokenText) ?? "")
        return encode(text)
    }

    /// `<bos>` (when the tokenizer has one) followed by the ids of `text`: how training data,
    /// prompts and evaluation all start a sequence.
    public func encodeWithBOS(_ text: String) -> [Int] {
        (bosID.map { [$0] } ?? []) + encode(text)
    }

    /// Identifies the vocabulary: two tokenizers with the same fingerprint map text identically.
    public var fingerprint: String {
        (try? serialized()).map { ContentDigest.hex(of: Array($0.utf8)) } ?? "unknown"
    }
}

/// An unknown tokenizer type or a malformed description.
public struct TokenizerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Rebuilds tokenizers from their serialized JSON by type string. New tokenizer types
/// register a decoder here; nothing else changes.
public enum TokenizerRegistry {
    public typealias Decoder = @Sendable (Data) throws -> any Tokenizer

    private static let lock = NSLock()
    nonisolated(unsafe) private static var decoders: [String: Decoder] = [
        CharTokenizer.kind: { try CharTokenizer(json: $0) },
        WordTokenizer.kind: { try WordTokenizer(json: $0) },
        HuggingFaceTokenizer.kind: { try HuggingFaceTokenizer(json: $0) },
    ]

    public static func register(kind: String, decoder: @escaping Decoder) {
        lock.withLock { decoders[kind] = decoder }
    }

    public static var knownKinds: [String] { lock.withLock { decoders.keys.sorted() } }

    public static func load(json: String) throws -> any Tokenizer {
        let data = Data(json.utf8)
        struct Header: Decodable { let type: String }
        guard let header = try? JSONDecoder().decode(Header.self, from: data) else {
            throw TokenizerError(message: "tokenizer description is not JSON with a \"type\" field")
        }
        guard let decoder = lock.withLock({ decoders[header.type] }) else {
            throw TokenizerError(message: "unknown tokenizer type \"\(header.type)\" (known: \(knownKinds.joined(separator: ", ")))")
        }
        return try decoder(data)
    }
}
