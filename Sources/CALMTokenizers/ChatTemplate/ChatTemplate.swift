import Foundation

/// A Hugging Face chat template (Jinja), rendered the way `apply_chat_template` renders it for
/// the subset of Jinja that chat templates use: `if`/`elif`/`else`, `for` with `loop.*`, `set`,
/// comparisons, `in`, `is defined`/`none`, string concatenation, indexing and slicing, common
/// filters and string methods, and `raise_exception`.
public struct ChatTemplate: Sendable {
    public struct Message: Sendable, Equatable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    public let source: String
    private let nodes: [TemplateNode]

    public init(_ source: String) throws {
        self.source = source
        nodes = try TemplateParser.parse(source)
    }

    /// The prompt text for `messages`; with `addGenerationPrompt` it ends where the assistant's
    /// reply starts.
    public func render(_ messages: [Message], addGenerationPrompt: Bool = true, bosToken: String = "",
                       eosToken: String = "") throws -> String {
        var scope = TemplateScope(variables: [
            "messages": .list(messages.map { .dict(["role": .string($0.role), "content": .string($0.content)]) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ])
        var out = ""
        try scope.render(nodes, into: &out)
        return out
    }
}

extension TemplateNode: @unchecked Sendable {}
