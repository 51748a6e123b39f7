/// Recursive-descent parser for template expressions, loosest binding first:
/// `x if c else y`, `or`, `and`, `not`, comparisons / `in` / `is`, `~`, `+ -`, `* / %`, unary
/// minus, then postfix `.name`, `[i]`, `[a:b]`, `(args)` and `| filter`.
struct ExpressionParser {
    private enum Token: Equatable {
        case name(String)
        case string(String)
        case int(Int)
        case symbol(String)
    }

    private let tokens: [Token]
    private var position = 0

    static func parse(_ text: String) throws -> TemplateExpression {
        var parser = ExpressionParser(tokens: try tokenize(text))
        let e = try parser.expression()
        guard parser.position == parser.tokens.count else { throw TemplateError(message: "unexpected text in \"\(text)\"") }
        return e
    }

    private init(tokens: [Token]) { self.tokens = tokens }

    private static func tokenize(_ text: String) throws -> [Token] {
        var out: [Token] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c.isLetter || c == "_" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" { j += 1 }
                out.append(.name(String(chars[i..<j])))
                i = j
            } else if c.isNumber {
                var j = i
                while j < chars.count, chars[j].isNumber { j += 1 }
                guard let value = Int(String(chars[i..<j])) else { throw TemplateError(message: "bad number in \"\(text)\"") }
                out.append(.int(value))
                i = j
            } else if c == "'" || c == "\"" {
                var j = i + 1, value = ""
                while j < chars.count, chars[j] != c {
                    if chars[j] == "\\", j + 1 < chars.count {
                        j += 1
                        switch chars[j] {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        default: value.append(chars[j])
                        }
                    } else {
                        value.append(chars[j])
                    }
                    j += 1
                }
                guard j < chars.count else { throw TemplateError(message: "unterminated string in \"\(text)\"") }
                out.append(.string(value))
                i = j + 1
            } else {
                let two = i + 1 < chars.count ? String(chars[i...i + 1]) : ""
                if ["==", "!=", "<=", ">=", "//"].contains(two) {
                    out.append(.symbol(two))
                    i += 2
                } else if "+-*/%~<>()[].,:|=".contains(c) {
                    out.append(.symbol(String(c)))
                    i += 1
                } else {
                    throw TemplateError(message: "unexpected character \"\(c)\" in \"\(text)\"")
                }
            }
        }
        return out
    }

    private var peek: Token? { position < tokens.count ? tokens[position] : nil }

    private mutating func accept(_ token: Token) -> Bool {
        guard peek == token else { return false }
        position += 1
        return true
    }

    private mutating func expect(_ token: Token) throws {
        guard accept(token) else { throw TemplateError(message: "expected \(token) at token \(position)") }
    }

    private mutating func name() throws -> String {
        guard case .name(let n) = peek else { throw TemplateError(message: "expected a name at token \(position)") }
        position += 1
        return n
    }

    mutating func expression() throws -> TemplateExpression {
        let value = try or()
        guard accept(.name("if")) else { return value }
        let condition = try or()
        let otherwise = accept(.name("else")) ? try expression() : nil
        return .conditional(value, condition: condition, otherwise: otherwise)
    }

    private mutating func or() throws -> TemplateExpression {
        var e = try and()
        while accept(.name("or")) { e = .binary("or", e, try and()) }
        return e
    }

    private mutating func and() throws -> TemplateExpression {
        var e = try not()
        while accept(.name("and")) { e = .binary("and", e, try not()) }
        return e
    }

    private mutating func not() throws -> TemplateExpression {
        accept(.name("not")) ? .unary("not", try not()) : try comparison()
    }

    private mutating func comparison() throws -> TemplateExpression {
        var e = try concatenation()
        while true {
            if case .symbol(let s) = peek, ["==", "!=", "<", ">", "<=", ">="].contains(s) {
                position += 1
                e = .binary(s, e, try concatenation())
            } else if accept(.name("in")) {
                e = .binary("in", e, try concatenation())
            } else if peek == .name("not"), position + 1 < tokens.count, tokens[position + 1] == .name("in") {
                position += 2
                e = .unary("not", .binary("in", e, try concatenation()))
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                e = .test(e, try name(), negated: negated)
            } else {
                return e
            }
        }
    }

    private mutating func concatenation() throws -> TemplateExpression {
        var e = try additive()
        while accept(.symbol("~")) { e = .binary("~", e, try additive()) }
        return e
    }

    private mutating func additive() throws -> TemplateExpression {
        var e = try multiplicative()
        while case .symbol(let s) = peek, s == "+" || s == "-" {
            position += 1
            e = .binary(s, e, try multiplicative())
        }
        return e
    }

    private mutating func multiplicative() throws -> TemplateExpression {
        var e = try unary()
        while case .symbol(let s) = peek, ["*", "/", "//", "%"].contains(s) {
            position += 1
            e = .binary(s, e, try unary())
        }
        return e
    }

    private mutating func unary() throws -> TemplateExpression {
        accept(.symbol("-")) ? .unary("-", try unary()) : try postfix()
    }

    private mutating func postfix() throws -> TemplateExpression {
        var e = try primary()
        while true {
            if accept(.symbol(".")) {
                let member = try name()
                e = accept(.symbol("(")) ? .method(e, member, try arguments()) : .attribute(e, member)
            } else if accept(.symbol("[")) {
                let start = peek == .symbol(":") ? nil : try expression()
                if accept(.symbol(":")) {
                    let end = peek == .symbol("]") ? nil : try expression()
                    e = .slice(e, start, end)
                } else if let start {
                    e = .index(e, start)
                }
                try expect(.symbol("]"))
            } else if accept(.symbol("|")) {
                e = .filter(e, try name())
            } else {
                return e
            }
        }
    }

    private mutating func arguments() throws -> [TemplateExpression] {
        var args: [TemplateExpression] = []
        while !accept(.symbol(")")) {
            args.append(try expression())
            if !accept(.symbol(",")) {
                try expect(.symbol(")"))
                break
            }
        }
        return args
    }

    private mutating func primary() throws -> TemplateExpression {
        switch peek {
        case .string(let s):
            position += 1
            var value = s
            while case .string(let more) = peek {  // adjacent literals concatenate
                value += more
                position += 1
            }
            return .literal(.string(value))
        case .int(let i):
            position += 1
            return .literal(.int(i))
        case .name(let n):
            position += 1
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return accept(.symbol("(")) ? .call(n, try arguments()) : .variable(n)
            }
        case .symbol("("):
            position += 1
            let e = try expression()
            try expect(.symbol(")"))
            return e
        case .symbol("["):
            position += 1
            var items: [TemplateExpression] = []
            while !accept(.symbol("]")) {
                items.append(try expression())
                if !accept(.symbol(",")) {
                    try expect(.symbol("]"))
                    break
                }
            }
            return .list(items)
        default:
            throw TemplateError(message: "unexpected token at \(position)")
        }
    }
}
