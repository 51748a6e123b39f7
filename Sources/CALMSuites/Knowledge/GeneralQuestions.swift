/// Everyday questions for the knowledge suite's general chat: D_C pairs each with the anchor's
/// own answer, so the bridges learn to leave the anchor alone where the expert has nothing to
/// add, including questions shaped like the suite's about real countries (the expert knows none
/// of them; the anchor's answer stands). A separate showcase set (other topics and countries)
/// compares anchor and composition side by side.
public enum GeneralQuestions {
    static let topics = [
        "the ocean", "photosynthesis", "a bicycle", "the moon", "volcanoes", "honey bees", "the heart", "rainbows",
        "the internet", "bread", "glaciers", "electricity", "the alphabet", "coffee", "deserts", "penguins", "music",
        "the weather", "a library", "recycling", "trees", "gravity", "the sun", "clocks", "friendship", "chess",
        "sleep", "vaccines", "rivers", "mathematics", "the brain", "cooking rice", "airplanes", "exercise", "salt",
        "the printing press", "dinosaurs", "wind", "soap", "maps", "teeth", "mountains", "cats", "dogs", "a garden",
        "paper", "the stars", "milk", "snow", "a computer", "batteries", "bridges", "fire", "whales", "language",
        "history", "painting", "the seasons", "money", "a telescope", "plastic", "wheat", "forests", "the skin",
        "earthquakes", "a thermometer", "birds", "reading", "water", "the calendar",
    ]
    static let templates = [
        "What is {topic}?", "Tell me one interesting fact about {topic}.", "Explain {topic} in one sentence.",
        "Why is {topic} important?", "Write a short sentence about {topic}.", "How would you describe {topic} to a child?",
    ]

    /// Real countries, asked about in the suite's own question shapes (not France or Spain,
    /// which the showcase asks about).
    static let realCountries = [
        "Germany", "Italy", "Japan", "Egypt", "Brazil", "Canada", "India", "Mexico", "Kenya", "Norway",
        "Peru", "Chile", "Greece", "Turkey", "Vietnam", "Poland", "Sweden", "Argentina", "Australia", "Nigeria",
    ]

    /// Every general question, before shuffling: each topic in each template, then each real
    /// country in each of the suite's question shapes.
    static let pool: [String] = {
        let everyday = topics.flatMap { topic in templates.map { $0.replacingOccurrences(of: "{topic}", with: topic) } }
        let shapes = KnowledgeAttribute.allCases.flatMap(\.questions)
        let countries = realCountries.flatMap { country in shapes.map { $0.replacingOccurrences(of: "{entity}", with: country) } }
        return everyday + countries
    }()

    /// `count` distinct questions (at most `available`), in a seeded order.
    public static func make(count: Int, seed: UInt64) -> [String] {
        var all = pool
        var words = InventedWords(seed: seed)
        words.shuffle(&all)
        return Array(all.prefix(count))
    }

    /// The most questions `make` can return.
    public static var available: Int { pool.count }

    /// Twenty questions on topics D_C never uses.
    public static let showcase = [
        "What is the capital of France?", "How many legs does a spider have?", "What color is the sky on a clear day?",
        "Who wrote Romeo and Juliet?", "What is two plus three?", "Name a fruit that is yellow.",
        "What do plants need to grow?", "What is the largest planet in our solar system?", "How many days are in a week?",
        "What is the boiling point of water in Celsius?", "Give me a synonym for happy.", "What language is spoken in Spain?",
        "What is the opposite of cold?", "Why do we brush our teeth?", "What animal is known as the king of the jungle?",
        "How do you say hello in Spanish?", "What is the freezing point of water in Fahrenheit?",
        "Name three primary colors.", "What is a baby cat called?", "What does a thermostat do?",
    ]
}
