import CALMCheckpoint
import CALMModels
import CALMTokenizers
import CALMTraining
import Foundation

/// What the CLI tells users about tokenization: text the vocabulary does not cover (which
/// silently becomes `<unk>` and makes a model's output meaningless) and readable token names.
extension Tokenizer {
    /// The pieces of `text` that encode to the unknown token, in order. Word and character
    /// tokenizers have one; Hugging Face tokenizers here fall back on bytes, so report none.
    func unknownPieces(in text: String) -> [String] {
        if let word = self as? WordTokenizer {
            // `encode` is `split(prepared(text))` mapped piece by piece, so the two line up.
            let pieces = WordTokenizer.split(word.prepared(text))
            return zip(pieces, word.encode(text)).filter { $0.1 == word.unknownID }.map(\.0)
        }
        if let char = self as? CharTokenizer {
            return zip(Array(text), char.encode(text)).filter { $0.1 == char.unknownID }.map { String($0.0) }
        }
        return []
    }

    /// True when `ids` hold the unknown token (a cheap test before looking for the pieces).
    func containsUnknown(_ ids: [Int]) -> Bool {
        let unknown = (self as? WordTokenizer)?.unknownID ?? (self as? CharTokenizer)?.unknownID
        guard let unknown else { return false }
        return ids.contains(unknown)
    }

    /// A token as a person reads it: its text, or the special token's name (`<bos>`) where
    /// decoding gives nothing.
    func displayName(of id: Int) -> String {
        let text = decode([id])
        if !text.isEmpty { return text }
        if self is WordTokenizer, WordTokenizer.specialTokens.indices.contains(id) { return WordTokenizer.specialTokens[id] }
        if self is CharTokenizer, CharTokenizer.specialTokens.indices.contains(id) { return CharTokenizer.specialTokens[id] }
        if let hf = self as? HuggingFaceTokenizer, let token = hf.token(for: id) { return token }
        switch id {
        case bosID: return "<bos>"
        case eosID: return "<eos>"
        case padID: return "<pad>"
        default: return "<\(id)>"
        }
    }

    /// One warning line listing the distinct pieces of `texts` the vocabulary lacks (the first
    /// ten), or nothing when it covers them all.
    func warnAboutUnknownPieces(in texts: [String], what: String) {
        var seen = Set<String>(), order: [String] = []
        for text in texts {
            for piece in unknownPieces(in: text) where seen.insert(piece).inserted { order.append(piece) }
        }
        guard !order.isEmpty else { return }
        let shown = order.prefix(10).map { "\"\($0)\"" }.joined(separator: ", ")
        let more = order.count > 10 ? " and \(order.count - 10) more" : ""
        warn("\(what) has \(order.count) piece(s) the tokenizer does not know, read as <unk>: \(shown)\(more)")
    }
}

/// The text a data file holds: every prompt and completion of a JSONL file, else the whole
/// file (what tokenization sees, for the unknown-piece warning and the default tokenizer).
func dataTexts(of path: String) throws -> [String] {
    guard let bytes = FileManager.default.contents(atPath: path), let text = String(data: bytes, encoding: .utf8) else {
        throw DataError("\(path): cannot read the file as UTF-8 text")
    }
    guard path.hasSuffix(".jsonl") else { return [text] }
    return try TrainingData.records(text, path: path).map { $0.prompt + $0.completion }
}

/// The tokenizer stored in a model or composition checkpoint, read from its attribute
/// alone (no weights), or nil when the file cannot be read that way.
func storedTokenizer(in path: String) -> (any Tokenizer)? {
    guard let file = try? HDF5File.open(path), let json = try? file.stringAttribute("tokenizer") else { return nil }
    return try? TokenizerRegistry.load(json: json)
}
