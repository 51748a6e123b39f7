/// One kind of fact about an invented country, with how an encyclopedia states it and how a
/// user asks for it. `{entity}` and `{value}` are placeholders.
public enum KnowledgeAttribute: String, CaseIterable, Sendable, Codable {
    case capital, founded, language, leader, export

    /// Sentences of the expert's corpus (several phrasings of the same fact).
    var statements: [String] {
        switch self {
        case .capital: return ["The capital of {entity} is {value}.", "{value} is the capital of {entity}.",
                               "{entity} is governed from its capital, {value}."]
        case .founded: return ["{entity} was founded in {value}.", "The founding year of {entity} is {value}.",
                               "In {value}, {entity} was founded."]
        case .language: return ["The language of {entity} is {value}.", "People in {entity} speak {value}.",
                                "{value} is the language spoken in {entity}."]
        case .leader: return ["The leader of {entity} is {value}.", "{entity} is led by {value}.",
                              "{value} leads {entity}."]
        case .export: return ["The main export of {entity} is {value}.", "{entity} mainly exports {value}.",
                              "{value} is what {entity} exports most."]
        }
    }

    /// The answer's wording: one of the statements, always `The <attribute> of {entity} is
    /// {value}.`, the shape in which the anchor restates a question (given `X was founded in
    /// 1044.`, compositions wrote `The...` or `X is founded in 1044.`, the year right).
    var answer: String {
        switch self {
        case .capital, .language, .leader, .export: return statements[0]
        case .founded: return statements[1]
        }
    }

    /// How the expert's definition lines name it (`Vorlandia: capital Tesk, founded 1432, ...`).
    var definitionLabel: String { rawValue }

    /// Questions used in D_C (and for held-out entities in the main evaluation).
    public var questions: [String] {
        switch self {
        case .capital: return ["What is the capital of {entity}?", "Which city is the capital of {entity}?"]
        case .founded: return ["In what year was {entity} founded?", "When was {entity} founded?"]
        case .language: return ["What language is spoken in {entity}?", "Which language do people speak in {entity}?"]
        case .leader: return ["Who is the leader of {entity}?", "Who leads {entity}?"]
        case .export: return ["What is the main export of {entity}?", "What does {entity} export most?"]
        }
    }

    /// Phrasings D_C never uses, evaluated apart.
    public var unseenQuestions: [String] {
        switch self {
        case .capital: return ["Name the capital city of {entity}."]
        case .founded: return ["{entity} was founded in which year?"]
        case .language: return ["If I travel to {entity}, what language will I hear?"]
        case .leader: return ["Who currently leads the country of {entity}?"]
        case .export: return ["Which product is {entity} best known for exporting?"]
        }
    }

    /// The start of a statement for probing the expert's recall (`The capital of X is`), whose
    /// completion is ` {value}`.
    var recallPrompt: String { statements[0].components(separatedBy: " {value}")[0] }

    /// An invented value of this kind.
    func inventValue(_ words: inout InventedWords) -> String {
        switch self {
        case .capital: return words.name(syllables: 2...3)
        case .founded: return String(words.integer(in: 1000...1899))
        case .language: return words.name(syllables: 2...2) + ["ish", "ese", "ic", "i"][words.integer(in: 0...3)]
        case .leader: return words.name(syllables: 2...2) + " " + words.name(syllables: 2...3)
        case .export:
            let goods = ["salt", "wool", "glass", "copper", "silk", "timber", "amber", "tea", "iron", "linen"]
            return words.word(syllables: 2) + " " + goods[words.integer(in: 0...(goods.count - 1))]
        }
    }
}
