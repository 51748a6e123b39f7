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

/// Turns token strings back into text.
indirect enum TokenDecoder {
    case sequence([TokenDecoder])
    case byteLevel
    case replace(TextPattern, String)
    case byteFallback
    case fuse
    case strip(content: Character, start: Int, stop: Int)
    case metaspace(replacement: String, prependScheme: String)

    static let supported = "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace"

    init?(json: JSONValue?) throws {
        guard let json, !json.isNull else { return nil }
        let type = json["type"]?.string ?? "(none)"
        switch type {
        case "Sequence": self = .sequence(try (json["decoders"]?.array ?? []).compactMap { try TokenDecoder(json: $0) })
        case "ByteLevel": self = .byteLevel
        case "Replace":
            self = .replace(try TextPattern(json["pattern"], where: "Replace decoder"), json["content"]?.string ?? "")
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            guard let content = json["content"]?.string, content.count == 1 else { throw tokenizerError("Strip decoder needs a one-character content") }
            self = .strip(content: Character(content), start: json["start"]?.int ?? 0, stop: json["stop"]?.int ?? 0)
        case "Metaspace":
            let scheme = json["prepend_scheme"]?.string ?? ((json["add_prefix_space"]?.bool ?? true) ? "always" : "never")
            self = .metaspace(replacement: json["replacement"]?.string ?? "▁", prependScheme: scheme)
        default: throw tokenizerError("unsupported decoder \(type) (supported: \(Self.supported))")
        }
    }

    func callAsFunction(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let steps): return steps.reduce(tokens) { $1($0) }
        case .byteLevel:
            return [String(decoding: tokens.flatMap { ByteLevel.decodeBytes($0) }, as: UTF8.self)]
        case .replace(let pattern, let content): return tokens.map { pattern.replacingMatches(in: $0, with: content) }
        case .fuse: return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                var s = Substring(token)
                for _ in 0..<start where s.first == content { s = s.dropFirst() }
                for _ in 0..<stop where s.last == content { s = s.dropLast() }
                return String(s)
            }
        case .metaspace(let replacement, let scheme):
            return tokens.enumerated().map { i, token in
                var s = token.replacingOccurrences(of: replacement, with: " ")
                if i == 0, scheme != "never", s.hasPrefix(" ") { s.removeFirst() }
                return s
            }
        case .byteFallback:
            // Runs of <0xXX> tokens become the bytes they spell; invalid UTF-8 becomes U+FFFD per byte.
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) { out.append(s) } else {
                    out += Array(repeating: "\u{FFFD}", count: pending.count)
                }
                pending = []
            }
            for token in tokens {
                if token.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"),
                   let b = UInt8(token.dropFirst(3).prefix(2), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out
        }
    }
}
