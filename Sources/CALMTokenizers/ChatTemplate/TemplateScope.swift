import Foundation

/// Evaluates template nodes and expressions against variables.
struct TemplateScope {
    var variables: [String: TemplateValue]

    mutating func render(_ nodes: [TemplateNode], into out: inout String) throws {
        for node in nodes {
            switch node {
            case .text(let t): out += t
            case .output(let e): out += try evaluate(e).rendered
            case .assignment(let name, let e): variables[name] = try evaluate(e)
            case .conditional(let branches, let otherwise):
                if let branch = try branches.first(where: { try evaluate($0.condition).truthy }) {
                    try render(branch.body, into: &out)
                } else {
                    try render(otherwise, into: &out)
                }
            case .loop(let name, let sequence, let body):
                let items: [TemplateValue]
                switch try evaluate(sequence) {
                case .list(let l): items = l
                case .dict(let d): items = d.keys.sorted().map { .string($0) }
                case .string(let s): items = s.map { .string(String($0)) }
                case .undefined, .none: items = []
                case let other: throw TemplateError(message: "cannot loop over \(other.rendered)")
                }
                let saved = (variables[name], variables["loop"])
                for (i, item) in items.enumerated() {
                    variables[name] = item
                    variables["loop"] = .dict([
                        "index": .int(i + 1), "index0": .int(i), "first": .bool(i == 0), "last": .bool(i == items.count - 1),
                        "length": .int(items.count), "revindex": .int(items.count - i), "revindex0": .int(items.count - i - 1),
                    ])
                    try render(body, into: &out)
                }
                // Jinja scopes loop variables (and `set` inside loops) to the loop.
                variables[name] = saved.0
                variables["loop"] = saved.1
            }
        }
    }

    func evaluate(_ expression: TemplateExpression) throws -> TemplateValue {
        switch expression {
        case .literal(let v): return v
        case .variable(let name): return variables[name] ?? .undefined
        case .list(let items): return .list(try items.map(evaluate))
        case .attribute(let target, let name):
            if case .dict(let d) = try evaluate(target) { return d[name] ?? .undefined }
            return .undefined
        case .index(let target, let key): return try Self.index(try evaluate(target), try evaluate(key))
        case .slice(let target, let start, let end):
            let value = try evaluate(target)
            let from = try start.map(evaluate), to = try end.map(evaluate)
            switch value {
            case .list(let l): return .list(Array(l[Self.range(from, to, count: l.count)]))
            case .string(let s): return .string(String(Array(s)[Self.range(from, to, count: s.count)]))
            default: throw TemplateError(message: "cannot slice \(value.rendered)")
            }
        case .unary(let op, let e):
            let v = try evaluate(e)
            if op == "not" { return .bool(!v.truthy) }
            guard case .int(let i) = v else { throw TemplateError(message: "cannot negate \(v.rendered)") }
            return .int(-i)
        case .binary(let op, let l, let r):
            if op == "and" { let a = try evaluate(l); return a.truthy ? try evaluate(r) : a }
            if op == "or" { let a = try evaluate(l); return a.truthy ? a : try evaluate(r) }
            return try Self.binary(op, try evaluate(l), try evaluate(r))
        case .test(let e, let name, let negated):
            let v = try evaluate(e)
            let result: Bool
            switch name {
            case "defined": result = v != .undefined
            case "undefined": result = v == .undefined
            case "none": result = v == .none
            case "string": if case .string = v { result = true } else { result = false }
            case "mapping": if case .dict = v { result = true } else { result = false }
            case "iterable", "sequence": if case .list = v { result = true } else if case .string = v { result = true } else { result = false }
            case "true": result = v == .bool(true)
            case "false": result = v == .bool(false)
            default: throw TemplateError(message: "unsupported test \"is \(name)\"")
            }
            return .bool(result != negated)
        case .filter(let e, let name): return try Self.filter(name, try evaluate(e))
        case .method(let target, let name, let args): return try Self.method(name, try evaluate(target), try args.map(evaluate))
        case .call(let name, let args):
            let values = try args.map(evaluate)
            switch name {
            case "raise_exception": throw TemplateError(message: values.first?.rendered ?? "raised an exception")
            case "range":
                guard case .int(let n) = values.first else { throw TemplateError(message: "range needs an integer") }
                return .list((0..<max(0, n)).map { .int($0) })
            default: throw TemplateError(message: "unsupported function \(name)()")
            }
        case .conditional(let value, let condition, let otherwise):
            return try evaluate(condition).truthy ? try evaluate(value) : try otherwise.map(evaluate) ?? .undefined
        }
    }

    private static func range(_ from: TemplateValue?, _ to: TemplateValue?, count: Int) -> Range<Int> {
        func bound(_ v: TemplateValue?, _ fallback: Int) -> Int {
            guard case .int(let i) = v else { return fallback }
            return min(count, max(0, i < 0 ? count + i : i))
        }
        let a = bound(from, 0), b = bound(to, count)
        return a..<max(a, b)
    }

    private static func index(_ target: TemplateValue, _ key: TemplateValue) throws -> TemplateValue {
        switch (target, key) {
        case (.dict(let d), .string(let k)): return d[k] ?? .undefined
        case (.list(let l), .int(let i)):
            let j = i < 0 ? l.count + i : i
            return l.indices.contains(j) ? l[j] : .undefined
        case (.string(let s), .int(let i)):
            let chars = Array(s), j = i < 0 ? chars.count + i : i
            return chars.indices.contains(j) ? .string(String(chars[j])) : .undefined
        default: return .undefined
        }
    }

    private static func binary(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws -> TemplateValue {
        switch op {
        case "==": return .bool(a == b)
        case "!=": return .bool(a != b)
        case "~": return .string(a.rendered + b.rendered)
        case "in":
            switch b {
            case .list(let l): return .bool(l.contains(a))
            case .dict(let d): if case .string(let k) = a { return .bool(d[k] != nil) }; return .bool(false)
            case .string(let s): return .bool(s.contains(a.rendered))
            default: return .bool(false)
            }
        default: break
        }
        switch (a, b) {
        case (.int(let x), .int(let y)):
            switch op {
            case "+": return .int(x + y)
            case "-": return .int(x - y)
            case "*": return .int(x * y)
            case "//", "/": guard y != 0 else { throw TemplateError(message: "division by zero") }; return .int(x / y)
            case "%": guard y != 0 else { throw TemplateError(message: "division by zero") }; return .int(x % y)
            case "<": return .bool(x < y)
            case ">": return .bool(x > y)
            case "<=": return .bool(x <= y)
            case ">=": return .bool(x >= y)
            default: break
            }
        case (.string(let x), .string(let y)):
            switch op {
            case "+": return .string(x + y)
            case "<": return .bool(x < y)
            case ">": return .bool(x > y)
            default: break
            }
        case (.list(let x), .list(let y)) where op == "+": return .list(x + y)
        default: break
        }
        throw TemplateError(message: "cannot apply \(op) to \(a.json) and \(b.json)")
    }

    private static func filter(_ name: String, _ v: TemplateValue) throws -> TemplateValue {
        switch name {
        case "trim": return .string(v.rendered.trimmingCharacters(in: .whitespacesAndNewlines))
        case "upper": return .string(v.rendered.uppercased())
        case "lower": return .string(v.rendered.lowercased())
        case "string": return .string(v.rendered)
        case "tojson": return .string(v.json)
        case "length", "count":
            switch v {
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            case .string(let s): return .int(s.count)
            default: return .int(0)
            }
        case "first": if case .list(let l) = v { return l.first ?? .undefined }; return .undefined
        case "last": if case .list(let l) = v { return l.last ?? .undefined }; return .undefined
        default: throw TemplateError(message: "unsupported filter \"| \(name)\"")
        }
    }

    private static func method(_ name: String, _ target: TemplateValue, _ args: [TemplateValue]) throws -> TemplateValue {
        guard case .string(let s) = target else {
            if case .dict(let d) = target, name == "get" {
                guard case .string(let k) = args.first else { return .undefined }
                return d[k] ?? (args.count > 1 ? args[1] : .none)
            }
            throw TemplateError(message: "unsupported method .\(name)() on \(target.json)")
        }
        let arg = args.first?.rendered ?? ""
        switch name {
        case "strip": return .string(args.isEmpty ? s.trimmingCharacters(in: .whitespacesAndNewlines)
                                                  : s.trimmingCharacters(in: CharacterSet(charactersIn: arg)))
        case "lstrip": return .string(String(s.drop { $0.isWhitespace }))
        case "rstrip": return .string(String(s.reversed().drop { $0.isWhitespace }.reversed()))
        case "startswith": return .bool(s.hasPrefix(arg))
        case "endswith": return .bool(s.hasSuffix(arg))
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "replace": return .string(s.replacingOccurrences(of: arg, with: args.count > 1 ? args[1].rendered : ""))
        case "split": return .list(s.components(separatedBy: args.isEmpty ? " " : arg).map { .string($0) })
        default: throw TemplateError(message: "unsupported method .\(name)()")
        }
    }
}
