import Foundation

/// Parses the Jinja subset chat templates use, with the settings transformers renders them
/// with (`trim_blocks`, `lstrip_blocks`): the newline after a `{% %}` tag is dropped, and
/// spaces before one on its own line are too; `{%-` / `-%}` trim as in Jinja.
struct TemplateParser {
    private enum Segment {
        case text(String)
        case output(String)
        case statement(String)
    }

    static func parse(_ source: String) throws -> [TemplateNode] {
        var parser = TemplateParser(segments: try segments(source))
        let nodes = try parser.nodes(until: [])
        guard parser.position == parser.segments.count else { throw TemplateError(message: "unexpected {% \(parser.peekStatement ?? "") %}") }
        return nodes
    }

    private let segments: [Segment]
    private var position = 0

    private init(segments: [Segment]) { self.segments = segments }

    // MARK: Segments

    private static func segments(_ source: String) throws -> [Segment] {
        var out: [Segment] = []
        var trimNextLeading = false, dropNextNewline = false
        var textStart = source.startIndex, i = source.startIndex
        while i < source.endIndex {
            let next = source.index(after: i)
            guard source[i] == "{", next < source.endIndex, "{%#".contains(source[next]) else {
                i = next
                continue
            }
            let kind = source[next]
            let close = kind == "{" ? "}}" : kind == "%" ? "%}" : "#}"
            let afterOpen = source.index(after: next)
            guard let end = source[afterOpen...].range(of: close) else {
                throw TemplateError(message: "unclosed {\(kind)")
            }
            var inner = Substring(source[afterOpen..<end.lowerBound])
            let trimBefore = inner.hasPrefix("-"), trimAfter = inner.hasSuffix("-")
            if trimBefore { inner = inner.dropFirst() }
            if trimAfter { inner = inner.dropLast() }
            let text = adjust(String(source[textStart..<i]), trimLeading: trimNextLeading, dropNewline: dropNextNewline,
                              trimTrailing: trimBefore, lstrip: kind != "{")
            if !text.isEmpty { out.append(.text(text)) }
            let content = inner.trimmingCharacters(in: .whitespacesAndNewlines)
            if kind == "{" { out.append(.output(content)) } else if kind == "%" { out.append(.statement(content)) }
            trimNextLeading = trimAfter
            dropNextNewline = kind != "{"
            i = end.upperBound
            textStart = i
        }
        let tail = adjust(String(source[textStart...]), trimLeading: trimNextLeading, dropNewline: dropNextNewline,
                          trimTrailing: false, lstrip: false)
        if !tail.isEmpty { out.append(.text(tail)) }
        return out
    }

    /// Applies whitespace control to the text between two tags.
    private static func adjust(_ text: String, trimLeading: Bool, dropNewline: Bool, trimTrailing: Bool, lstrip: Bool) -> String {
        var t = Substring(text)
        if trimLeading {
            t = t.drop { $0.isWhitespace }
        } else if dropNewline, t.first == "\n" {
            t = t.dropFirst()
        }
        if trimTrailing {
            while let last = t.last, last.isWhitespace { t = t.dropLast() }
        } else if lstrip {
            // Spaces and tabs between the line start and a block tag go.
            var u = t
            while let last = u.last, last == " " || last == "\t" { u = u.dropLast() }
            if u.isEmpty || u.last == "\n" { t = u }
        }
        return String(t)
    }

    // MARK: Nodes

    private var peekStatement: String? {
        guard position < segments.count, case .statement(let s) = segments[position] else { return nil }
        return s
    }

    /// Parses nodes until a statement whose first word is in `terminators` (left unconsumed).
    private mutating func nodes(until terminators: Set<String>) throws -> [TemplateNode] {
        var out: [TemplateNode] = []
        while position < segments.count {
            switch segments[position] {
            case .text(let t):
                out.append(.text(t))
                position += 1
            case .output(let e):
                out.append(.output(try ExpressionParser.parse(e)))
                position += 1
            case .statement(let s):
                let word = String(s.prefix { !$0.isWhitespace })
                if terminators.contains(word) { return out }
                position += 1
                out.append(try statement(word, String(s.dropFirst(word.count))))
            }
        }
        if !terminators.isEmpty { throw TemplateError(message: "missing {% \(terminators.sorted().joined(separator: " / ")) %}") }
        return out
    }

    private mutating func statement(_ word: String, _ rest: String) throws -> TemplateNode {
        switch word {
        case "if":
            var branches = [(condition: try ExpressionParser.parse(rest), body: try nodes(until: ["elif", "else", "endif"]))]
            var otherwise: [TemplateNode] = []
            while let s = peekStatement {
                position += 1
                if s.hasPrefix("elif") {
                    branches.append((try ExpressionParser.parse(String(s.dropFirst(4))), try nodes(until: ["elif", "else", "endif"])))
                } else if s == "else" {
                    otherwise = try nodes(until: ["endif"])
                } else {
                    return .conditional(branches, otherwise: otherwise)  // endif
                }
            }
            throw TemplateError(message: "missing {% endif %}")
        case "for":
            let parts = rest.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            guard parts.count == 3, parts[1] == "in" else { throw TemplateError(message: "unsupported loop \"for\(rest)\"") }
            let body = try nodes(until: ["endfor"])
            position += 1
            return .loop(variable: String(parts[0]), sequence: try ExpressionParser.parse(String(parts[2])), body: body)
        case "set":
            guard let eq = rest.firstIndex(of: "=") else { throw TemplateError(message: "unsupported \"set\(rest)\"") }
            return .assignment(rest[..<eq].trimmingCharacters(in: .whitespaces), try ExpressionParser.parse(String(rest[rest.index(after: eq)...])))
        default:
            throw TemplateError(message: "unsupported statement {% \(word) %}")
        }
    }
}
