/// A chat-template problem: unsupported syntax, or an error the template raised itself.
public struct TemplateError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { "chat template: \(message)" }
}

/// Expressions of the supported Jinja subset.
indirect enum TemplateExpression {
    case literal(TemplateValue)
    case variable(String)
    case list([TemplateExpression])
    case attribute(TemplateExpression, String)
    case index(TemplateExpression, TemplateExpression)
    case slice(TemplateExpression, TemplateExpression?, TemplateExpression?)
    case unary(String, TemplateExpression)
    case binary(String, TemplateExpression, TemplateExpression)
    case test(TemplateExpression, String, negated: Bool)
    case filter(TemplateExpression, String)
    case call(String, [TemplateExpression])
    case method(TemplateExpression, String, [TemplateExpression])
    case conditional(TemplateExpression, condition: TemplateExpression, otherwise: TemplateExpression?)
}

/// Template structure: text, `{{ }}` outputs and `{% %}` statements.
indirect enum TemplateNode {
    case text(String)
    case output(TemplateExpression)
    case conditional([(condition: TemplateExpression, body: [TemplateNode])], otherwise: [TemplateNode])
    case loop(variable: String, sequence: TemplateExpression, body: [TemplateNode])
    case assignment(String, TemplateExpression)
}
