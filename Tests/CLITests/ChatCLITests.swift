import CALMCheckpoint
import CALMTokenizers
import Foundation
import Testing

/// Chat templates travel through convert and export, and `generate --chat` applies them.
@Suite("calm generate --chat", .serialized)
struct ChatCLITests {
    @Test func theChatTemplateTravelsAndApplies() throws {
        let dir = try makeTemporaryDirectory()
        let source = "\(dir)/hf"
        try FileManager.default.copyItem(atPath: "\(ConversionCLITests.fixtures)/llama", toPath: source)
        let template = "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '\\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
        try template.write(toFile: "\(source)/chat_template.jinja", atomically: true, encoding: .utf8)
        #expect(try CLI.run(["convert", source, "\(dir)/chat.h5"]).status == 0)
        #expect(try CLI.run(["convert", "\(ConversionCLITests.fixtures)/llama", "\(dir)/plain.h5"]).status == 0)

        // The stored tokenizer encodes exactly the rendered conversation, with nothing prepended.
        let tokenizer = try ModelCheckpoint.load("\(dir)/chat.h5").tokenizer
        #expect(tokenizer.chatTemplate == template)
        #expect(try tokenizer.encodeChat(user: "hi", system: "be brief") == tokenizer.encode("<|system|>be brief\n<|user|>hi\n<|assistant|>"))

        let chat = try CLI.run(["generate", "--model", "\(dir)/chat.h5", "--chat", "--prompt", "hi", "--max-tokens", "3"])
        #expect(chat.status == 0, "\(chat.stderr)")
        let plain = try CLI.run(["generate", "--model", "\(dir)/plain.h5", "--chat", "--prompt", "hi", "--max-tokens", "3"])
        #expect(plain.status != 0 && plain.stderr.contains("--chat") && plain.stderr.contains("no chat template")
                && plain.stderr.split(separator: "\n").count == 1, "\(plain.stderr)")

        // Export writes it back where transformers looks for it.
        #expect(try CLI.run(["export", "\(dir)/chat.h5", "\(dir)/out"]).status == 0)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/tokenizer_config.json")))
        #expect((config as? [String: Any])?["chat_template"] as? String == template)
    }
}
