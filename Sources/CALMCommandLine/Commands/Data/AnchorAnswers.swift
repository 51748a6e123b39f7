import CALMCheckpoint
import CALMModels
import CALMSuites
import CALMTraining
import Foundation

/// The anchor's own greedy answers to chat questions, as D_C records (`calm data knowledge
/// --general-answers`): training a composition to reproduce them keeps the anchor's behaviour.
struct AnchorAnswers {
    let path: String
    let checkpoint: ModelCheckpoint
    /// Formats the questions and answers as the suite's facts do.
    let format: KnowledgeFacts
    /// Longest answer kept; longer ones are cut off mid-sentence and left out of D_C.
    var maxTokens = 96

    init(anchor: String, format: KnowledgeFacts) throws {
        path = anchor
        checkpoint = try ModelCheckpoint.load(anchor)
        self.format = format
    }

    /// One record per question whose answer ends (end-of-sequence within `maxTokens`).
    func answer(_ questions: [String]) throws -> [TrainingData.PromptCompletion] {
        let (model, tokenizer) = (checkpoint.model, checkpoint.tokenizer)
        let log = FileHandle.standardError
        log.write(Data("answering \(questions.count) questions with \(path)\n".utf8))
        var records: [TrainingData.PromptCompletion] = []
        for question in questions {
            let prompt = format.prompt(question)
            let promptIDs = tokenizer.encodeWithBOS(prompt)
            let room = min(maxTokens, model.maxContext - promptIDs.count)
            guard room > 0 else { continue }
            let ids = try model.generate(prompt: promptIDs, maxTokens: room, stopToken: tokenizer.eosID)
            guard ids.count < room else { continue }
            let text = tokenizer.decode(ids).trimmingCharacters(in: .whitespacesAndNewlines)
            records.append(.init(prompt: prompt, completion: format.completion(text)))
        }
        log.write(Data("kept \(records.count) answers that end within \(maxTokens) tokens\n".utf8))
        return records
    }
}
