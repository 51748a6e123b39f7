/// Turns the text of the tokens generated so far into deltas a client can be sent, ending the
/// text before the first stop string. A delta never holds text that a later token could turn
/// into a stop string, nor a trailing replacement character (a UTF-8 sequence split across
/// tokens), so streamed deltas concatenate to exactly the final text.
struct StopText {
    let stops: [String]
    /// Unicode scalars already handed out.
    private var emitted = 0

    init(stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// The next delta for the full text so far, and whether a stop string ended it.
    mutating func advance(fullText: String) -> (delta: String, stopped: Bool) {
        let scalars = Array(fullText.unicodeScalars)
        if let cut = firstStop(in: fullText) {
            let final = Array(String(fullText[..<cut]).unicodeScalars)
            return (take(final, upTo: final.count), true)
        }
        var safe = scalars.count - heldBack(fullText)
        if safe > emitted, scalars[safe - 1] == "\u{FFFD}" { safe -= 1 }
        return (take(scalars, upTo: safe), false)
    }

    /// Whatever was held back, once generation ended without a stop string.
    mutating func finish(fullText: String) -> String {
        let scalars = Array(fullText.unicodeScalars)
        return take(scalars, upTo: scalars.count)
    }

    private mutating func take(_ scalars: [Unicode.Scalar], upTo end: Int) -> String {
        guard end > emitted else { return "" }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[emitted..<end])
        emitted = end
        return String(out)
    }

    private func firstStop(in text: String) -> String.Index? {
        stops.compactMap { text.range(of: $0)?.lowerBound }.min()
    }

    /// Scalars at the end of `text` that begin some stop string (they may yet complete it).
    private func heldBack(_ text: String) -> Int {
        let scalars = Array(text.unicodeScalars)
        var longest = 0
        for stop in stops {
            let stopScalars = Array(stop.unicodeScalars)
            for length in stride(from: min(stopScalars.count - 1, scalars.count), to: longest, by: -1)
            where Array(scalars.suffix(length)) == Array(stopScalars.prefix(length)) {
                longest = length
                break
            }
        }
        return longest
    }
}
