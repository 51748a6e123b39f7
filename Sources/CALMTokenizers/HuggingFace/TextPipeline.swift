import CALMSupport
import Foundation

/// The text-side stages of a Hugging Face `tokenizer.json`: normalizers and pre-tokenizers.
/// Each is built from its JSON description; an unsupported type is an error that lists the
/// supported ones.

func tokenizerError(_ message: String) -> TokenizerError { TokenizerError(message: "tokenizer.json: " + message) }

/// A literal string or a regular expression, as `{"String": ...}` or `{"Regex": ...}`.
enum TextPattern {
    case literal(String)
    case regex(NSRegularExpression)

    init(_ json: JSONValue?, where context: String) throws {
        if let s = json?["String"]?.string {
            self = .literal(s)
        } else if let r = json?["Regex"]?.string {
            do { self = .regex(try NSRegularExpression(pattern: r)) } catch {
                throw tokenizerError("\(context): regular expression \(r) does not compile")
            }
        } else {
            throw tokenizerError("\(context): pattern is neither {\"String\": ...} nor {\"Regex\": ...}")
        }
    }

    /// Non-overlapping matches in `text`, left to right, as String ranges.
    func matches(in text: String) -> [Range<String.Index>] {
        switch self {
        case .literal(let s):
            guard !s.isEmpty else { return [] }
            var out: [Range<String.Index>] = []
            var start = text.startIndex
            while let r = text.range(of: s, range: start..<text.endIndex) {
                out.append(r)
                start = r.upperBound
            }
            return out
        case .regex(let re):
            return re.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { m in
                m.range.length > 0 ? Range(m.range, in: text) : nil
            }
        }
    }

    func replacingMatches(in text: String, with content: String) -> String {
        switch self {
        case .literal(let s): return s.isEmpty ? text : text.replacingOccurrences(of: s, with: content)
        case .regex(let re):
            return re.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text),
                                               withTemplate: NSRegularExpression.escapedTemplate(for: content))
        }
    }
}

/// Text normalization applied before pre-tokenization.
indirect enum Normalizer {
    case sequence([Normalizer])
    case prepend(String)
    case replace(TextPattern, String)
    case nfc, nfd, nfkc, nfkd, lowercase
    case strip(left: Bool, right: Bool)

    static let supported = "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip"

    init?(json: JSONValue?) throws {
        guard let json, !json.isNull else { return nil }
        let type = json["type"]?.string ?? "(none)"
        switch type {
        case "Sequence":
            self = .sequence(try (json["normalizers"]?.array ?? []).compactMap { try Normalizer(json: $0) })
        case "Prepend": self = .prepend(json["prepend"]?.string ?? "")
        case "Replace":
            self = .replace(try TextPattern(json["pattern"], where: "Replace normalizer"), json["content"]?.string ?? "")
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "Strip": self = .strip(left: json["strip_left"]?.bool ?? true, right: json["strip_right"]?.bool ?? true)
        default: throw tokenizerError("unsupported normalizer \(type) (supported: \(Self.supported))")
        }
    }

    func callAsFunction(_ text: String) -> String {
        switch self {
        case .sequence(let steps): return steps.reduce(text) { $1($0) }
        case .prepend(let p): return text.isEmpty ? text : p + text
        case .replace(let pattern, let content): return pattern.replacingMatches(in: text, with: content)
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .strip(let left, let right):
            var s = Substring(text)
            if left { s = s.drop(while: \.isWhitespace) }
            if right { while s.last?.isWhitespace == true { s = s.dropLast() } }
            return String(s)
        }
    }
}

/// How a Split pre-tokenizer treats the matched delimiters.
enum SplitBehavior: String {
    case isolated = "Isolated", removed = "Removed"
    case mergedWithPrevious = "MergedWithPrevious", mergedWithNext = "MergedWithNext"
}

/// Splits normalized text into pieces that the model encodes independently.
indirect enum PreTokenizer {
    case sequence([PreTokenizer])
    /// GPT-2's byte-to-character mapping, optionally after its own regex split.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(TextPattern, SplitBehavior)
    /// SentencePiece's `▁` for spaces, with the dummy prefix on the first piece ("first"),
    /// every piece ("always") or none ("never").
    case metaspace(replacement: String, prependScheme: String, split: Bool)
    case whitespaceSplit
    case digits(individual: Bool)

    static let supported = "Sequence, ByteLevel, Split (Isolated, Removed, MergedWithPrevious, MergedWithNext), Metaspace, WhitespaceSplit, Digits"
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    init?(json: JSONValue?) throws {
        guard let json, !json.isNull else { return nil }
        let type = json["type"]?.string ?? "(none)"
        switch type {
        case "Sequence":
            self = .sequence(try (json["pretokenizers"]?.array ?? []).compactMap { try PreTokenizer(json: $0) })
        case "ByteLevel":
            self = .byteLevel(addPrefixSpace: json["add_prefix_space"]?.bool ?? true, useRegex: json["use_regex"]?.bool ?? true)
        case "Split":
            guard json["invert"]?.bool != true else { throw tokenizerError("Split pre-tokenizer with invert = true is not supported") }
            let name = json["behavior"]?.string ?? ""
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw tokenizerError("unsupported Split behavior \(name) (supported: Isolated, Removed, MergedWithPrevious, MergedWithNext)")
            }
            self = .split(try TextPattern(json["pattern"], where: "Split pre-tokenizer"), behavior)
        case "Metaspace":
            let scheme = json["prepend_scheme"]?.string ?? ((json["add_prefix_space"]?.bool ?? true) ? "always" : "never")
            guard ["first", "always", "never"].contains(scheme) else {
                throw tokenizerError("unsupported Metaspace prepend_scheme \(scheme) (supported: first, always, never)")
            }
            self = .metaspace(replacement: json["replacement"]?.string ?? "▁", prependScheme: scheme, split: json["split"]?.bool ?? true)
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Digits": self = .digits(individual: json["individual_digits"]?.bool ?? false)
        default: throw tokenizerError("unsupported pre-tokenizer \(type) (supported: \(Self.supported))")
        }
    }

    /// Splits every piece; `isFirstSegment` tells whether the pieces start the whole input
    /// (Metaspace's "first" scheme prepends only there).
    func callAsFunction(_ pieces: [String], isFirstSegment: Bool) -> [String] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(pieces) { $1($0, isFirstSegment: isFirstSegment) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            return pieces.flatMap { piece -> [String] in
                let text = addPrefixSpace && !piece.hasPrefix(" ") ? " " + piece : piece
                let parts = useRegex ? Self.split(text, TextPattern.regex(ByteLevel.gpt2Regex), .isolated) : [text]
                return parts.map(ByteLevel.encode)
            }
        case .split(let pattern, let behavior):
            return pieces.flatMap { Self.split($0, pattern, behavior) }
        case .metaspace(let replacement, let scheme, let split):
            return pieces.enumerated().flatMap { index, piece -> [String] in
                var text = piece.replacingOccurrences(of: " ", with: replacement)
                let prepend = scheme == "always" || (scheme == "first" && isFirstSegment && index == 0)
                if prepend, !text.hasPrefix(replacement) { text = replacement + text }
                return split ? Self.split(text, .literal(replacement), .mergedWithNext) : [text]
            }
        case .whitespaceSplit:
            return pieces.flatMap { $0.split(whereSeparator: \.isWhitespace).map(String.init) }
        case .digits(let individual):
            let re = ByteLevel.regex(individual ? #"\p{N}"# : #"\p{N}+"#)
            return pieces.flatMap { Self.split($0, .regex(re), .isolated) }
        }
    }

    /// Splits `text` around the pattern's matches.
    static func split(_ text: String, _ pattern: TextPattern, _ behavior: SplitBehavior) -> [String] {
        var out: [String] = []
        var cursor = text.startIndex
        var pendingPrefix = ""  // a delimiter waiting for the next piece (MergedWithNext)
        func emit(_ s: String) { if !s.isEmpty { out.append(s) } }
        for match in pattern.matches(in: text) {
            let before = String(text[cursor..<match.lowerBound])
            let delimiter = String(text[match])
            switch behavior {
            case .isolated: emit(pendingPrefix + before); emit(delimiter)
            case .removed: emit(before)
            case .mergedWithPrevious: emit(before + delimiter)
            case .mergedWithNext:
                emit(pendingPrefix + before)
                pendingPrefix = delimiter
                cursor = match.upperBound
                continue
            }
            pendingPrefix = ""
            cursor = match.upperBound
        }
        emit(pendingPrefix + String(text[cursor...]))
        return out
    }
}

/// GPT-2's reversible map from bytes to printable characters.
enum ByteLevel {
    static let gpt2Regex = regex(PreTokenizer.gpt2Pattern)

    static func regex(_ pattern: String) -> NSRegularExpression {
        // The patterns are constants of this file; a failure here is a programming error.
        guard let re = try? NSRegularExpression(pattern: pattern) else { preconditionFailure("bad built-in pattern \(pattern)") }
        return re
    }

    /// byte -> character: printable Latin-1 bytes map to themselves, the rest to U+0100 upwards.
    static let byteToCharacter: [Unicode.Scalar] = {
        var printable = Array(UInt32(33)...126) + Array(UInt32(161)...172) + Array(UInt32(174)...255)
        var mapped = [UInt32](repeating: 0, count: 256)
        for b in printable { mapped[Int(b)] = b }
        var next: UInt32 = 256
        for b in 0..<256 where !printable.contains(UInt32(b)) {
            mapped[b] = next
            printable.append(UInt32(b))
            next += 1
        }
        return mapped.map { Unicode.Scalar($0)! }
    }()

    static let characterToByte: [Unicode.Scalar: UInt8] = {
        var out: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in byteToCharacter.enumerated() { out[c] = UInt8(b) }
        return out
    }()

    static func encode(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: text.utf8.map { byteToCharacter[Int($0)] })
        return String(out)
    }

    /// Bytes of mapped characters; characters outside the map are kept as their UTF-8.
    static func decodeBytes(_ text: String) -> [UInt8] {
        text.unicodeScalars.flatMap { c -> [UInt8] in characterToByte[c].map { [$0] } ?? Array(String(c).utf8) }
    }
}
