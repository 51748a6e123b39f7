import CALMSupport
import Foundation

/// The BPE model of a `tokenizer.json`: a vocabulary, ranked merges, and what to do with
/// characters outside the vocabulary (byte fallback to `<0xXX>` tokens, or an unknown token).
struct BPEModel {
    let vocabulary: [String: Int]
    /// (left id, right id) -> (rank, merged id)
    let merges: [Pair: (rank: Int, id: Int)]
    let unknownID: Int?
    let fuseUnknown: Bool
    let byteFallback: Bool
    /// Words found whole in the vocabulary skip the merges (Llama 3).
    let ignoreMerges: Bool
    let byteIDs: [Int?]

    struct Pair: Hashable { let left: Int, right: Int }

    init(json: JSONValue) throws {
        guard json["type"]?.string == "BPE" else {
            throw tokenizerError("model type \(json["type"]?.string ?? "(none)") is not supported (supported: BPE)")
        }
        for field in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = json[field]?.string, !s.isEmpty {
                throw tokenizerError("BPE \(field) \"\(s)\" is not supported")
            }
        }
        if let dropout = json["dropout"]?.number, dropout > 0 {
            throw tokenizerError("BPE dropout is a training-time option and is not supported")
        }
        guard let vocabJSON = json["vocab"]?.object else { throw tokenizerError("BPE model has no vocab object") }
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(vocabJSON.count)
        for (token, value) in vocabJSON {
            guard let id = value.int, id >= 0 else { throw tokenizerError("vocab entry \(token) has no non-negative integer id") }
            vocabulary[token] = id
        }
        self.vocabulary = vocabulary
        var merges: [Pair: (rank: Int, id: Int)] = [:]
        for (rank, entry) in (json["merges"]?.array ?? []).enumerated() {
            let parts: [String]
            if let s = entry.string {
                // "left right": the first space separates (tokens never contain a raw space).
                guard let space = s.firstIndex(of: " ") else { throw tokenizerError("merge \(rank) \"\(s)\" is not \"left right\"") }
                parts = [String(s[..<space]), String(s[s.index(after: space)...])]
            } else if let a = entry.array?.compactMap(\.string), a.count == 2 {
                parts = a
            } else {
                throw tokenizerError("merge \(rank) is neither \"left right\" nor [left, right]")
            }
            guard let l = vocabulary[parts[0]], let r = vocabulary[parts[1]], let m = vocabulary[parts[0] + parts[1]] else {
                throw tokenizerError("merge \(rank) (\(parts[0]) \(parts[1])) uses a token missing from the vocab")
            }
            let pair = Pair(left: l, right: r)
            if merges[pair] == nil { merges[pair] = (rank, m) }
        }
        self.merges = merges
        if let unk = json["unk_token"]?.string {
            guard let id = vocabulary[unk] else { throw tokenizerError("unk_token \(unk) is not in the vocab") }
            unknownID = id
        } else {
            unknownID = nil
        }
        fuseUnknown = json["fuse_unk"]?.bool ?? false
        byteFallback = json["byte_fallback"]?.bool ?? false
        ignoreMerges = json["ignore_merges"]?.bool ?? false
        byteIDs = (0..<256).map { vocabulary[String(format: "<0x%02X>", $0)] }
    }

    /// Token ids of one pre-tokenized piece.
    func encode(_ word: String) -> [Int] {
        if ignoreMerges, let id = vocabulary[word] { return [id] }
        var symbols: [Int] = []
        var lastWasUnknown = false
        for scalar in word.unicodeScalars {
            let s = String(scalar)
            if let id = vocabulary[s] {
                symbols.append(id)
                lastWasUnknown = false
                continue
            }
            if byteFallback {
                let ids = s.utf8.map { byteIDs[Int($0)] }
                if ids.allSatisfy({ $0 != nil }) {
                    symbols += ids.compactMap { $0 }
                    lastWasUnknown = false
                    continue
                }
            }
            guard let unknownID else { continue }  // as the reference: no unk token, the character is dropped
            if !(fuseUnknown && lastWasUnknown) { symbols.append(unknownID) }
            lastWasUnknown = true
        }
        return applyMerges(symbols)
    }

    /// Repeatedly merges the adjacent pair of lowest rank (leftmost first among equals).
    private func applyMerges(_ initial: [Int]) -> [Int] {
        guard initial.count > 1 else { return initial }
        var ids = initial
        var next = Array(1...ids.count)  // index of the following live symbol (count = end)
        var previous = Array(-1..<(ids.count - 1))
        var alive = [Bool](repeating: true, count: ids.count)
        var heap = MinHeap()
        func consider(_ i: Int) {
            let j = next[i]
            guard j < ids.count, let m = merges[Pair(left: ids[i], right: ids[j])] else { return }
            heap.push(.init(rank: m.rank, position: i, left: ids[i], right: ids[j]))
        }
        for i in 0..<(ids.count - 1) { consider(i) }
        while let top = heap.pop() {
            let i = top.position
            let j = next[i]
            // Skip candidates made stale by an earlier merge.
            guard alive[i], j < ids.count, ids[i] == top.left, ids[j] == top.right,
                  let m = merges[Pair(left: top.left, right: top.right)], m.rank == top.rank else { continue }
            ids[i] = m.id
            alive[j] = false
            next[i] = next[j]
            if next[j] < ids.count { previous[next[j]] = i }
            if previous[i] >= 0 { consider(previous[i]) }
            consider(i)
        }
        return ids.indices.filter { alive[$0] }.map { ids[$0] }
    }
}

/// A binary min-heap of merge candidates ordered by (rank, position).
struct MinHeap {
    struct Candidate { let rank: Int, position: Int, left: Int, right: Int }
    private var items: [Candidate] = []

    private static func less(_ a: Candidate, _ b: Candidate) -> Bool { (a.rank, a.position) < (b.rank, b.position) }

    mutating func push(_ c: Candidate) {
        items.append(c)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Candidate? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = i
                if l < items.count, Self.less(items[l], items[smallest]) { smallest = l }
                if r < items.count, Self.less(items[r], items[smallest]) { smallest = r }
                if smallest == i { break }
                items.swapAt(i, smallest)
                i = smallest
            }
        }
        return first
    }
}
