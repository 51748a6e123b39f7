import CALMSupport
import Foundation

/// Tokens added on top of the model's vocabulary (special tokens such as `<s>` and plain added
/// tokens). They are cut out of the text before normalization (or, for `normalized` ones,
/// out of the normalized text), longest match first, and never split further.
struct AddedVocabulary {
    struct Token {
        let id: Int
        let content: String
        let special: Bool
        let normalized: Bool
        let leftStrip: Bool
        let rightStrip: Bool
        let singleWord: Bool
    }

    let tokens: [Token]

    init(json: JSONValue?) throws {
        tokens = try (json?.array ?? []).map { t in
            guard let id = t["id"]?.int, let content = t["content"]?.string, !content.isEmpty else {
                throw tokenizerError("an added_tokens entry lacks an id or a non-empty content")
            }
            let special = t["special"]?.bool ?? false
            return Token(id: id, content: content, special: special, normalized: t["normalized"]?.bool ?? !special,
                         leftStrip: t["lstrip"]?.bool ?? false, rightStrip: t["rstrip"]?.bool ?? false,
                         singleWord: t["single_word"]?.bool ?? false)
        }
    }

    /// A stretch of text: either an added token's id or text still to be tokenized.
    enum Segment {
        case token(Int)
        case text(String)
    }

    /// Cuts the tokens with `normalized == normalizedPass` out of `text`.
    func split(_ text: String, normalizedPass: Bool) -> [Segment] {
        let candidates = tokens.filter { $0.normalized == normalizedPass }
        guard !candidates.isEmpty, !text.isEmpty else { return [.text(text)] }
        let scalars = Array(text.unicodeScalars)
        let contents = candidates.map { Array($0.content.unicodeScalars) }
        var out: [Segment] = []
        var textStart = 0
        var i = 0
        func flush(upTo end: Int) {
            if end > textStart {
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars[textStart..<end])
                out.append(.text(String(view)))
            }
        }
        while i < scalars.count {
            // Longest added token starting here.
            var best: (index: Int, length: Int)?
            for (k, content) in contents.enumerated() where content.count > (best?.length ?? 0) && i + content.count <= scalars.count {
                if scalars[i..<(i + content.count)].elementsEqual(content), wordBoundaryOK(candidates[k], scalars, i, i + content.count) {
                    best = (k, content.count)
                }
            }
            guard let (k, length) = best else { i += 1; continue }
            var start = i, end = i + length
            if candidates[k].leftStrip { while start > textStart, scalars[start - 1].properties.isWhitespace { start -= 1 } }
            if candidates[k].rightStrip { while end < scalars.count, scalars[end].properties.isWhitespace { end += 1 } }
            flush(upTo: start)
            out.append(.token(candidates[k].id))
            textStart = end
            i = end
        }
        flush(upTo: scalars.count)
        return out
    }

    private func wordBoundaryOK(_ token: Token, _ s: [Unicode.Scalar], _ start: Int, _ end: Int) -> Bool {
        guard token.singleWord else { return true }
        func isWord(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic || c.properties.numericType != nil || c == "_" }
        return (start == 0 || !isWord(s[start - 1])) && (end == s.count || !isWord(s[end]))
    }
}
