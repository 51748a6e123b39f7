import CALMTokenizers
import Foundation

/// Builds the tokenizer a GGUF file describes under `tokenizer.ggml.*` as the `tokenizer.json`
/// description `HuggingFaceTokenizer` already reads, so a converted checkpoint stores (and
/// `calm export` writes back) an ordinary Hugging Face tokenizer.
///
/// - `gpt2` vocabularies become byte-level BPE with the file's merges, split as
///   `tokenizer.ggml.pre` names (the regexes of llama.cpp's pre-tokenizer types, written as
///   the original models' `tokenizer.json` pre-tokenizers);
/// - `llama` vocabularies become SentencePiece-style BPE with byte fallback, merges recovered
///   from the token scores (as transformers' `generate_merges` does), `▁` for spaces with a
///   dummy prefix unless `tokenizer.ggml.add_space_prefix` is false (Gemma spells spaces
///   without one);
/// - control tokens become special added tokens, user-defined ones plain added tokens;
/// - BOS/EOS/padding from their ids, BOS prepended when `tokenizer.ggml.add_bos_token` says so
///   (default: yes for `llama` vocabularies, as llama.cpp does), and `tokenizer.chat_template`
///   stored with the tokenizer.
public enum GGUFTokenizer {
    /// llama.cpp's token types (`tokenizer.ggml.token_type`).
    enum TokenType: Int { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// The pre-tokenizer types this converter knows for byte-level vocabularies.
    static let byteLevelPreTypes = ["default", "gpt-2", "gpt2", "smollm", "llama-bpe", "llama3", "llama-v3", "smaug-bpe",
                                    "qwen2", "deepseek-r1-qwen"]

    static let llama3Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The tokenizer of a file whose metadata is `m` and architecture `architecture`.
    public static func load(_ m: GGUFMetadata, architecture: String) throws -> HuggingFaceTokenizer {
        let (json, specials) = try description(m, architecture: architecture)
        do {
            return try HuggingFaceTokenizer(tokenizerJSON: json, specialTokens: specials)
        } catch let error as TokenizerError {
            throw GGUFError(path: m.path, "the tokenizer it describes is unusable: \(error.message)")
        }
    }

    /// The `tokenizer.json` text and special tokens of the file's tokenizer.
    public static func description(_ m: GGUFMetadata, architecture: String) throws -> (json: String, specials: HuggingFaceTokenizer.SpecialTokens) {
        guard m["tokenizer.ggml.model"] != nil else {
            throw GGUFError(path: m.path, "has no tokenizer.ggml.model: the file carries no tokenizer")
        }
        let model = try m.string("tokenizer.ggml.model")
        var tokens = try m.strings("tokenizer.ggml.tokens")
        guard !tokens.isEmpty else { throw m.fail("tokenizer.ggml.tokens", "is empty") }
        let types = try m.integers("tokenizer.ggml.token_type") ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw m.fail("tokenizer.ggml.token_type", "has \(types.count) entries for \(tokens.count) tokens")
        }
        func type(_ id: Int) -> TokenType? { id < types.count ? TokenType(rawValue: types[id]) : nil }
        func tokenID(_ key: String) throws -> Int? {
            guard let id = try m.optionalInt(key) else { return nil }
            guard id >= 0, id < tokens.count else { throw m.fail(key, "= \(id) is not a token id (the vocabulary has \(tokens.count) tokens)") }
            return id
        }
        let (bos, eos, unk, pad) = (try tokenID("tokenizer.ggml.bos_token_id"), try tokenID("tokenizer.ggml.eos_token_id"),
                                    try tokenID("tokenizer.ggml.unknown_token_id"), try tokenID("tokenizer.ggml.padding_token_id"))
        if try m.optionalBool("tokenizer.ggml.add_eos_token") == true {
            throw m.fail("tokenizer.ggml.add_eos_token", "= true is not supported: tokenizers here never append EOS")
        }
        let original = tokens
        var modelJSON: [String: Any]
        var normalizer: Any = NSNull(), preTokenizer: Any = NSNull(), decoder: Any
        switch model {
        case "gpt2":
            // Every token of a byte-level vocabulary is spelled in GPT-2's byte alphabet; one that
            // is not (a mislabelled added token) is respelled, as transformers does.
            tokens = tokens.map { t in t.unicodeScalars.allSatisfy { ByteAlphabet.contains($0) } ? t : ByteAlphabet.spell(t) }
            let pre = try m.string("tokenizer.ggml.pre", default: "default")
            (normalizer, preTokenizer) = try byteLevelPipeline(pre: pre, m: m)
            let merges = try m.strings("tokenizer.ggml.merges")
            modelJSON = ["type": "BPE", "merges": merges, "byte_fallback": false, "fuse_unk": false,
                         "ignore_merges": ["llama-bpe", "llama3", "llama-v3", "smaug-bpe"].contains(pre)]
            decoder = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true]
        case "llama":
            let gemma = architecture.hasPrefix("gemma")
            var scores: [Double]
            if gemma {
                // Gemma's scores do not follow its merge order; the order of the tokens does, and
                // tokens of several spaces are stored as spaces where the model spells them `▁`.
                tokens = tokens.map { t in !t.isEmpty && t.allSatisfy({ $0 == " " }) ? String(repeating: "▁", count: t.count) : t }
                scores = tokens.indices.map { -Double($0) }
            } else {
                guard let s = try m.numbers("tokenizer.ggml.scores") else {
                    throw m.fail("tokenizer.ggml.scores", "is missing (a SentencePiece vocabulary needs its scores)")
                }
                guard s.count == tokens.count else {
                    throw m.fail("tokenizer.ggml.scores", "has \(s.count) entries for \(tokens.count) tokens")
                }
                scores = s
            }
            modelJSON = ["type": "BPE", "merges": derivedMerges(tokens: tokens, scores: scores), "byte_fallback": true,
                         "fuse_unk": true]
            if let unk { modelJSON["unk_token"] = tokens[unk] }
            let prefix = try m.bool("tokenizer.ggml.add_space_prefix", default: !gemma)
            var steps: [[String: Any]] = [["type": "Replace", "pattern": ["String": "▁"], "content": " "],
                                          ["type": "ByteFallback"], ["type": "Fuse"]]
            if gemma {
                normalizer = ["type": "Replace", "pattern": ["String": " "], "content": "▁"]
                preTokenizer = ["type": "Split", "pattern": ["String": " "], "behavior": "MergedWithPrevious", "invert": false]
            } else {
                preTokenizer = ["type": "Metaspace", "replacement": "▁", "prepend_scheme": prefix ? "first" : "never", "split": false]
            }
            if prefix { steps.append(["type": "Strip", "content": " ", "start": 1, "stop": 0]) }
            decoder = ["type": "Sequence", "decoders": steps]
        default:
            throw m.fail("tokenizer.ggml.model", "= \"\(model)\" is not supported (supported: gpt2 (byte-level BPE), llama (SentencePiece BPE))")
        }
        var vocab: [String: Int] = [:]
        for (id, t) in tokens.enumerated() { vocab[t] = id }  // a repeated token keeps its last id, as transformers does
        modelJSON["vocab"] = vocab

        // Control tokens are special; user-defined ones are added but not special. Both are
        // matched whole in the raw text. BOS/EOS/UNK/PAD are special whatever their type.
        var added: [[String: Any]] = []
        var seen = Set<Int>()
        func add(_ id: Int, special: Bool) {
            guard seen.insert(id).inserted else { return }
            added.append(["id": id, "content": tokens[id], "special": special, "normalized": false,
                          "lstrip": false, "rstrip": false, "single_word": false])
        }
        for id in tokens.indices {
            switch type(id) {
            case .control?:
                if model != "gpt2" || original[id] == tokens[id] { add(id, special: true) }
            case .userDefined?:
                if vocab[original[id]] != nil, original[id] == tokens[id] { add(id, special: false) }
            default: break
            }
        }
        for id in [bos, eos, unk, pad].compactMap({ $0 }) { add(id, special: true) }
        added.sort { ($0["id"] as? Int ?? 0) < ($1["id"] as? Int ?? 0) }

        let json: [String: Any] = ["version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
                                   "normalizer": normalizer, "pre_tokenizer": preTokenizer, "post_processor": NSNull(),
                                   "decoder": decoder, "model": modelJSON]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
        let addBOS = try m.optionalBool("tokenizer.ggml.add_bos_token") ?? (model == "llama")
        if addBOS, bos == nil {
            throw m.fail("tokenizer.ggml.add_bos_token", "is true but tokenizer.ggml.bos_token_id is missing")
        }
        let specials = HuggingFaceTokenizer.SpecialTokens(
            bos: bos.map { tokens[$0] }, eos: eos.map { tokens[$0] }, pad: pad.map { tokens[$0] }, addBOS: addBOS,
            chatTemplate: try m.optionalString("tokenizer.chat_template"))
        return (String(decoding: data, as: UTF8.self), specials)
    }

    /// Normalizer and pre-tokenizer for a byte-level vocabulary's `tokenizer.ggml.pre`.
    static func byteLevelPipeline(pre: String, m: GGUFMetadata) throws -> (normalizer: Any, preTokenizer: Any) {
        func byteLevel(regex: Bool) -> [String: Any] {
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex]
        }
        func split(_ pattern: String) -> [String: Any] {
            ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false], byteLevel(regex: false),
            ]]
        }
        switch pre {
        case "default", "gpt-2", "gpt2": return (NSNull(), byteLevel(regex: true))
        // Digits one by one, then GPT-2's split (llama.cpp's SMOLLM regexes).
        case "smollm": return (NSNull(), ["type": "Sequence", "pretokenizers": [
            ["type": "Digits", "individual_digits": true], byteLevel(regex: true),
        ]])
        case "llama-bpe", "llama3", "llama-v3", "smaug-bpe": return (NSNull(), split(llama3Split))
        case "qwen2", "deepseek-r1-qwen": return (["type": "NFC"], split(qwen2Split))
        default:
            throw m.fail("tokenizer.ggml.pre", "= \"\(pre)\" is not a supported pre-tokenizer (supported: \(byteLevelPreTypes.joined(separator: ", ")))")
        }
    }

    /// SentencePiece merges recovered from scores: every split of a token into two tokens,
    /// best merged score first (ties: longer left, then longer right piece, then file order),
    /// as transformers' `generate_merges` orders them, so the same text gives the same ids.
    static func derivedMerges(tokens: [String], scores: [Double]) -> [[String]] {
        var ids: [String: Int] = [:]
        for (id, t) in tokens.enumerated() { ids[t] = id }
        // One entry per distinct token, at its first position, with its last score.
        var order: [String] = []
        var score: [String: Double] = [:]
        for (t, s) in zip(tokens, scores) {
            if score[t] == nil { order.append(t) }
            score[t] = s
        }
        struct Candidate { let left: String, right: String, score: Double, leftLength: Int, rightLength: Int, index: Int }
        var candidates: [Candidate] = []
        for merged in order {
            let scalars = Array(merged.unicodeScalars)
            guard scalars.count > 1, let s = score[merged] else { continue }
            var local: [(left: String, right: String, leftID: Int, rightID: Int, split: Int)] = []
            for k in 1..<scalars.count {
                var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                l.append(contentsOf: scalars[..<k])
                r.append(contentsOf: scalars[k...])
                let (left, right) = (String(l), String(r))
                if let li = ids[left], let ri = ids[right] { local.append((left, right, li, ri, k)) }
            }
            local.sort { ($0.leftID, $0.rightID) < ($1.leftID, $1.rightID) }
            for p in local {
                candidates.append(Candidate(left: p.left, right: p.right, score: s, leftLength: p.split,
                                            rightLength: scalars.count - p.split, index: candidates.count))
            }
        }
        candidates.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.leftLength != b.leftLength { return a.leftLength > b.leftLength }
            if a.rightLength != b.rightLength { return a.rightLength > b.rightLength }
            return a.index < b.index
        }
        return candidates.map { [$0.left, $0.right] }
    }
}

/// GPT-2's byte-to-character map: printable Latin-1 bytes stand for themselves, the others
/// for U+0100 upwards in byte order.
enum ByteAlphabet {
    static let characters: [Unicode.Scalar] = {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var next: UInt32 = 256
        return (0..<256).map { b in
            if printable.contains(b) { return Unicode.Scalar(UInt8(b)) }
            defer { next += 1 }
            return Unicode.Scalar(next) ?? " "
        }
    }()

    static let members = Set(characters)

    static func contains(_ c: Unicode.Scalar) -> Bool { members.contains(c) }

    /// `text`'s UTF-8 bytes spelled in the alphabet.
    static func spell(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: text.utf8.map { characters[Int($0)] })
        return String(out)
    }
}
