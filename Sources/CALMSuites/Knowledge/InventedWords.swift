import CALMTensor

/// Pronounceable invented words from syllables: names that mean nothing to a pretrained model
/// and split into several of its tokens.
struct InventedWords {
    private static let onsets = ["b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kh", "l", "m", "n", "p", "q", "r",
                                 "s", "sk", "t", "th", "tr", "v", "vr", "z", "zh", "x"]
    private static let vowels = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "y"]
    private static let codas = ["", "", "", "n", "r", "l", "th", "sk", "m", "x", "v"]

    var generator: SeededGenerator

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    private mutating func pick(_ list: [String]) -> String { list[Int(generator.next() % UInt64(list.count))] }

    /// A lowercase word of `syllables` syllables.
    mutating func word(syllables: Int) -> String {
        (0..<syllables).map { _ in pick(Self.onsets) + pick(Self.vowels) + pick(Self.codas) }.joined()
    }

    /// A capitalised word of `min ... max` syllables.
    mutating func name(syllables range: ClosedRange<Int>) -> String {
        let count = range.lowerBound + Int(generator.next() % UInt64(range.count))
        let w = word(syllables: count)
        return w.prefix(1).uppercased() + w.dropFirst()
    }

    /// A uniform integer in `range`.
    mutating func integer(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(generator.next() % UInt64(range.count))
    }

    mutating func shuffle<T>(_ items: inout [T]) { items.shuffle(using: &generator) }
}
