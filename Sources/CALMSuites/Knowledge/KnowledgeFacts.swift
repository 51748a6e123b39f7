import CALMSupport
import Foundation

/// One expert's invented countries, the held-in subset D_C may mention, and the formats its
/// questions were asked in: everything needed to build fresh questions and score them
/// (`checkpoints/knowledge/<expert>.json`).
public struct KnowledgeFacts: Sendable, Equatable {
    /// Entity name -> attribute name -> value.
    public var entities: [String: [String: String]]
    /// Names D_C may mention (the rest exist only in the expert's corpus).
    public var heldIn: [String]
    /// Attribute name -> question templates with `{entity}`, as used in D_C.
    public var questions: [String: [String]]
    /// Attribute name -> phrasings D_C never uses.
    public var unseenQuestions: [String: [String]]
    /// The prompt around a question (`{question}`), e.g. the anchor's chat template.
    public var promptFormat: String
    /// The completion around an answer (`{answer}`).
    public var completionFormat: String
    /// Attribute name -> the answer's wording, with `{entity}` and `{value}` ("The capital of
    /// {entity} is {value}."): a full sentence, as a chat model answers, which restates the
    /// question in the expert's own phrasing right before the value. Absent: the bare value.
    public var answers: [String: String]

    /// Entities not held in, in a stable order.
    public var heldOut: [String] {
        let inSet = Set(heldIn)
        return entities.keys.filter { !inSet.contains($0) }.sorted()
    }

    public func prompt(_ question: String) -> String { promptFormat.replacingOccurrences(of: "{question}", with: question) }
    public func completion(_ answer: String) -> String { completionFormat.replacingOccurrences(of: "{answer}", with: answer) }

    /// The reference completion for `attribute` of `entity`.
    public func completion(entity: String, attribute: String) -> String {
        let value = entities[entity]?[attribute] ?? ""
        let wording = answers[attribute] ?? "{value}"
        return completion(wording.replacingOccurrences(of: "{entity}", with: entity).replacingOccurrences(of: "{value}", with: value))
    }

    /// The JSON document, keys sorted (stable bytes for the same facts).
    public func json() throws -> String {
        struct Document: Encodable {
            let entities: [String: [String: String]]
            let held_in: [String]
            let questions: [String: [String]]
            let unseen_questions: [String: [String]]
            let prompt_format: String
            let completion_format: String
            let answers: [String: String]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let data = try encoder.encode(Document(entities: entities, held_in: heldIn, questions: questions,
                                               unseen_questions: unseenQuestions, prompt_format: promptFormat,
                                               completion_format: completionFormat, answers: answers))
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Reads a facts file; every field is checked, and a failure names the file and the field.
    public init(jsonText: String, path: String) throws {
        func fail(_ message: String) -> FileError { FileError(path: path, message: message) }
        guard case .object(let root)? = JSONValue.parse(Data(jsonText.utf8)) else { throw fail("not a JSON object") }
        guard let entityObject = root["entities"]?.object else { throw fail("entities is missing or not an object") }
        entities = try entityObject.mapValues { v in
            guard let attributes = v.object, attributes.values.allSatisfy({ $0.string != nil }) else {
                throw fail("entities holds an entry that is not an object of strings")
            }
            return attributes.compactMapValues(\.string)
        }
        guard let heldArray = root["held_in"]?.array, heldArray.allSatisfy({ $0.string != nil }) else {
            throw fail("held_in is missing or not a list of strings")
        }
        let names = heldArray.compactMap(\.string)
        let known = entities
        if let unknown = names.first(where: { known[$0] == nil }) { throw fail("held_in names \(unknown), which is not an entity") }
        heldIn = names
        questions = try Self.stringLists(root["questions"], field: "questions", path: path)
        unseenQuestions = try Self.stringLists(root["unseen_questions"], field: "unseen_questions", path: path)
        guard let prompt = root["prompt_format"]?.string, prompt.contains("{question}") else {
            throw fail("prompt_format is missing or has no {question}")
        }
        guard let completion = root["completion_format"]?.string, completion.contains("{answer}") else {
            throw fail("completion_format is missing or has no {answer}")
        }
        promptFormat = prompt
        completionFormat = completion
        if let given = root["answers"] {
            guard let object = given.object, object.values.allSatisfy({ $0.string?.contains("{value}") == true }) else {
                throw fail("answers must map attributes to wordings that contain {value}")
            }
            answers = object.compactMapValues(\.string)
        } else {
            answers = [:]
        }
    }

    private static func stringLists(_ value: JSONValue?, field: String, path: String) throws -> [String: [String]] {
        guard let object = value?.object else { throw FileError(path: path, message: "\(field) is missing or not an object") }
        return try object.mapValues { v in
            guard let list = v.array?.compactMap(\.string), list.count == v.array?.count else {
                throw FileError(path: path, message: "\(field) holds a value that is not a list of strings")
            }
            return list
        }
    }

    init(entities: [String: [String: String]], heldIn: [String], promptFormat: String, completionFormat: String) {
        self.entities = entities
        self.heldIn = heldIn
        questions = Dictionary(uniqueKeysWithValues: KnowledgeAttribute.allCases.map { ($0.rawValue, $0.questions) })
        unseenQuestions = Dictionary(uniqueKeysWithValues: KnowledgeAttribute.allCases.map { ($0.rawValue, $0.unseenQuestions) })
        self.promptFormat = promptFormat
        self.completionFormat = completionFormat
        answers = Dictionary(uniqueKeysWithValues: KnowledgeAttribute.allCases.map { ($0.rawValue, $0.answer) })
    }
}
