import CALMTokenizers
import Foundation
import Testing

@Suite("chat templates")
struct ChatTemplateTests {
    struct Case: Decodable {
        struct Message: Decodable { let role: String; let content: String }
        let name: String
        let template: String
        let messages: [Message]
        let add_generation_prompt: Bool
        let expected: String?
        let error: String?
    }

    static let cases: [Case] = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/chat/templates.json").standardized.path
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return (try? JSONDecoder().decode([Case].self, from: data)) ?? []
    }()

    /// Same text as jinja2 with transformers' settings (scripts/make_chat_template_fixtures.py),
    /// including the templates' own raised errors.
    @Test func rendersLikeJinja() throws {
        #expect(Self.cases.count == 24)
        for c in Self.cases {
            let template = try ChatTemplate(c.template)
            let messages = c.messages.map { ChatTemplate.Message(role: $0.role, content: $0.content) }
            if let expected = c.expected {
                let text = try template.render(messages, addGenerationPrompt: c.add_generation_prompt, bosToken: "<s>", eosToken: "</s>")
                #expect(text == expected, "\(c.name)")
            } else {
                #expect(throws: TemplateError.self, "\(c.name)") {
                    try template.render(messages, addGenerationPrompt: c.add_generation_prompt, bosToken: "<s>", eosToken: "</s>")
                }
            }
        }
    }

    @Test func unsupportedSyntaxIsNamed() {
        #expect { try ChatTemplate("{% macro m() %}{% endmacro %}") } throws: { "\($0)".contains("unsupported statement {% macro %}") }
        #expect { try ChatTemplate("{% if x %}open") } throws: { "\($0)".contains("missing {% ") && "\($0)".contains("endif") }
        #expect { try ChatTemplate("{{ x | wordwrap }}").render([]) } throws: { "\($0)".contains("unsupported filter") }
    }
}
