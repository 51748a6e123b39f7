import CALMSupport
import Foundation

/// A tokenizer read from a Hugging Face `tokenizer.json`: byte-level BPE (GPT-2, Llama 3,
/// Qwen2) and SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma).
///
/// Encoding follows the reference pipeline: added tokens are cut out first, the rest is
/// normalized, pre-tokenized into pieces, and each piece is merged by the BPE model. The
/// `tokenizer.json` text is kept verbatim, so a converted checkpoint is self-contained and
/// `calm export` can write the same file back.
public struct HuggingFaceTokenizer: Tokenizer {
    public static let kind = "huggingface"

    /// Special-token names from `tokenizer_config.json` (or the model's config).
    public struct SpecialTokens: Codable, Sendable, Equatable {
        public var bos: String?
        public var eos: String?
        public var pad: String?
        /// Prepend BOS even when the post-processor does not (tokenizer_config's add_bos_token).
        public var addBOS: Bool?
        /// The Jinja chat template (tokenizer_config's `chat_template` or `chat_template.jinja`);
        /// absent from the stored description when nil, so older fingerprints are unchanged.
        public var chatTemplate: String?
        public init(bos: String? = nil, eos: String? = nil, pad: String? = nil, addBOS: Bool? = nil, chatTemplate: String? = nil) {
            self.bos = bos; self.eos = eos; self.pad = pad; self.addBOS = addBOS; self.chatTemplate = chatTemplate
        }
        enum CodingKeys: String, CodingKey { case bos, eos, pad, addBOS, chatTemplate = "chat_template" }
    }

    /// The `tokenizer.json` text, verbatim.
    public let tokenizerJSON: String
    public let specialTokens: SpecialTokens
    public let vocabularySize: Int
    public let bosID: Int?
    public let eosID: Int?
    public let padID: Int?

    private let model: BPEModel
    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer?
    private let decoder: TokenDecoder?
    private let added: AddedVocabulary
    private let idToToken: [Int: String]
    private let specialIDs: Set<Int>

    public init(tokenizerJSON: String, specialTokens: SpecialTokens = SpecialTokens()) throws {
        guard let json = JSONValue.parse(Data(tokenizerJSON.utf8)), json.object != nil else {
            throw tokenizerError("is not a JSON object")
        }
        guard let modelJSON = json["model"] else { throw tokenizerError("has no model") }
        self.tokenizerJSON = tokenizerJSON
        self.specialTokens = specialTokens
        model = try BPEModel(json: modelJSON)
        normalizer = try Normalizer(json: json["normalizer"])
        preTokenizer = try PreTokenizer(json: json["pre_tokenizer"])
        decoder = try TokenDecoder(json: json["decoder"])
        added = try AddedVocabulary(json: json["added_tokens"])
        var idToToken: [Int: String] = [:]
        for (token, id) in model.vocabulary { idToToken[id] = token }
        for t in added.tokens { idToToken[t.id] = t.content }
        self.idToToken = idToToken
        specialIDs = Set(added.tokens.filter(\.special).map(\.id))
        vocabularySize = (idToToken.keys.max() ?? -1) + 1

        let (addedTokens, vocabulary) = (added.tokens, model.vocabulary)
        func id(of name: String?, _ role: String) throws -> Int? {
            guard let name else { return nil }
            guard let id = Self.lookup(name, added: addedTokens, vocabulary: vocabulary) else {
                throw tokenizerError("\(role) token \(name) is neither a vocab entry nor an added token")
            }
            return id
        }
        let templateBOS = try Self.templatePrefix(json["post_processor"])
        let fallbackBOS = specialTokens.addBOS == true ? try id(of: specialTokens.bos, "bos") : nil
        bosID = templateBOS ?? fallbackBOS
        eosID = try id(of: specialTokens.eos, "eos")
        padID = try id(of: specialTokens.pad, "pad")
    }

    /// The one special token a TemplateProcessing post-processor puts before the text, if any.
    /// Templates that add tokens after the text, or several before it, are refused.
    private static func templatePrefix(_ json: JSONValue?) throws -> Int? {
        guard let json, !json.isNull else { return nil }
        switch json["type"]?.string ?? "" {
        case "ByteLevel": return nil
        case "Sequence":
            let found = try (json["processors"]?.array ?? []).compactMap { try templatePrefix($0) }
            guard found.count <= 1 else { throw tokenizerError("post-processor adds several prefix tokens") }
            return found.first
        case "TemplateProcessing":
            let single = json["single"]?.array ?? []
            guard let sequenceIndex = single.firstIndex(where: { $0["Sequence"] != nil }),
                  single.filter({ $0["Sequence"] != nil }).count == 1 else {
                throw tokenizerError("post-processor template has no single $A sequence")
            }
            guard sequenceIndex == single.count - 1 else {
                throw tokenizerError("post-processor template adds tokens after the text, which is not supported")
            }
            guard sequenceIndex <= 1 else { throw tokenizerError("post-processor template adds several tokens before the text") }
            guard sequenceIndex == 1 else { return nil }
            guard let name = single[0]["SpecialToken"]?["id"]?.string,
                  let id = json["special_tokens"]?[name]?["ids"]?.array?.first?.int else {
                throw tokenizerError("post-processor template names a special token without an id")
            }
            return id
        default:
            throw tokenizerError("unsupported post-processor \(json["type"]?.string ?? "(none)") (supported: TemplateProcessing, ByteLevel, Sequence)")
        }
    }

    /// Reads `tokenizer.json` and, when present, `tokenizer_config.json` from a model directory.
    public static func load(directory: String) throws -> HuggingFaceTokenizer {
        let path = (directory as NSString).appendingPathComponent("tokenizer.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError(message: "\(path): missing (a Hugging Face tokenizer.json is needed)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw TokenizerError(message: "\(path): is not UTF-8") }
        let specials = try readSpecialTokens(directory: directory)
        do { return try HuggingFaceTokenizer(tokenizerJSON: text, specialTokens: specials) } catch let error as TokenizerError {
            throw TokenizerError(message: "\(path): \(error.message.replacingOccurrences(of: "tokenizer.json: ", with: ""))")
        }
    }

    /// bos/eos/pad names, add_bos_token and the chat template from `tokenizer_config.json`
    /// (names as strings or `{"content": ...}` objects) and `chat_template.jinja`, which newer
    /// exports write instead; empty when neither file is present.
    public static func readSpecialTokens(directory: String) throws -> SpecialTokens {
        let path = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        let jinjaPath = (directory as NSString).appendingPathComponent("chat_template.jinja")
        let jinja = FileManager.default.contents(atPath: jinjaPath).map { String(decoding: $0, as: UTF8.self) }
        guard let data = FileManager.default.contents(atPath: path) else { return SpecialTokens(chatTemplate: jinja) }
        guard let json = JSONValue.parse(data), json.object != nil else {
            throw TokenizerError(message: "\(path): is not a JSON object")
        }
        func name(_ key: String) -> String? { json[key]?.string ?? json[key]?["content"]?.string }
        // A list of named templates: the one called "default".
        let listed = json["chat_template"]?.array?.first { $0["name"]?.string == "default" }?["template"]?.string
        return SpecialTokens(bos: name("bos_token"), eos: name("eos_token"), pad: name("pad_token"),
                             addBOS: json["add_bos_token"]?.bool,
                             chatTemplate: jinja ?? json["chat_template"]?.string ?? listed)
    }

    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        var atStart = true
        for segment in added.split(text, normalizedPass: false) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let raw):
                let normalized = normalizer?(raw) ?? raw
                for inner in added.split(normalized, normalizedPass: true) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let piece):
                        let pieces = preTokenizer?([piece], isFirstSegment: atStart) ?? [piece]
                        for p in pieces { ids += model.encode(p) }
                    }
                    atStart = false
                }
            }
            atStart = false
        }
        return ids
    }

    public func decode(_ ids: [Int]) -> String {
        let tokens = ids.compactMap { specialIDs.contains($0) ? nil : idToToken[$0] }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder(tokens).joined()
    }

    /// The id of a token string (added tokens first, then the vocabulary).
    public func id(of token: String) -> Int? {
        Self.lookup(token, added: added.tokens, vocabulary: model.vocabulary)
    }

    private static func lookup(_ token: String, added: [AddedVocabulary.Token], vocabulary: [String: Int]) -> Int? {
        added.first(where: { $0.content == token })?.id ?? vocabulary[token]
    }

    /// The token string of `id` (nil when the id is unknown).
    public func token(for id: Int) -> String? { idToToken[id] }

    public var chatTemplate: String? { specialTokens.chatTemplate }
    public func tokenText(_ id: Int) -> String? { idToToken[id] }

    private struct Serialized: Codable {
        var type: String
        var tokenizer: String
        var specials: SpecialTokens
    }

    public func serialized() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let s = Serialized(type: Self.kind, tokenizer: tokenizerJSON, specials: specialTokens)
        return String(decoding: try encoder.encode(s), as: UTF8.self)
    }

    public init(json: Data) throws {
        guard let s = try? JSONDecoder().decode(Serialized.self, from: json) else {
            throw TokenizerError(message: "malformed huggingface tokenizer description")
        }
        try self.init(tokenizerJSON: s.tokenizer, specialTokens: s.specials)
    }
}
