import CALMModels
import CALMTensor
@testable import CALMTraining
import Foundation
import Testing

/// Ranks simulated by threads: each collective waits until every rank has contributed.
final class ThreadedGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var contributions: [Int: [Float]] = [:]
    private var result: [Float] = []
    private var generation = 0, taken = 0

    init(size: Int) { self.size = size }

    func sum(_ values: [Float], rank: Int) -> [Float] {
        condition.lock()
        defer { condition.unlock() }
        while taken > 0 { condition.wait() }  // the previous collective is still being read
        let round = generation
        contributions[rank] = values
        if contributions.count == size {
            result = (0..<size).map { contributions[$0]! }.reduce([Float](repeating: 0, count: values.count)) { zip($0, $1).map(+) }
            contributions = [:]
            generation += 1
            condition.broadcast()
        }
        while generation == round { condition.wait() }
        taken += 1
        if taken == size { taken = 0; condition.broadcast() }
        return result
    }

    final class Member: DataParallelGroup {
        let shared: ThreadedGroup
        let rank: Int
        var size: Int { shared.size }
        init(_ shared: ThreadedGroup, rank: Int) { self.shared = shared; self.rank = rank }
        func sumInPlace(_ values: UnsafeMutableBufferPointer<Float>) throws {
            let summed = shared.sum(Array(values), rank: rank)
            for i in 0..<values.count { values[i] = summed[i] }
        }
        func gather(_ bytes: [UInt8], patient: Bool) throws -> [[UInt8]] { [bytes] }  // not used here
    }
}

@Suite("Data-parallel hooks")
struct DataParallelTests {
    @Test(arguments: [BatchSharding.slices, .ownership])
    func sharesCoverEveryExampleOnce(sharding: BatchSharding) {
        let batch = [17, 3, 8, 42, 5, 11, 0]
        for size in 1...4 {
            let shares = (0..<size).map { sharding.share(of: batch, rank: $0, size: size) }
            #expect(shares.flatMap { $0 }.sorted() == batch.sorted())
        }
        #expect(BatchSharding.slices.share(of: batch, rank: 1, size: 2) == [42, 5, 11, 0])
        #expect(BatchSharding.ownership.share(of: batch, rank: 1, size: 2) == [17, 3, 5, 11])
    }

    /// Buckets of 5 floats cut through tensors; rank 1 has no gradient for the second tensor,
    /// and neither rank for the third, which must stay nil (the optimizer then skips it).
    @Test func bucketsSumWeightedGradientsAcrossRanks() throws {
        let shared = ThreadedGroup(size: 2)
        let grads: [[[Float]?]] = [[[1, 2, 3, 4], [5, 6, 7], nil], [[10, 20, 30, 40], nil, nil]]
        let weights: [Float] = [0.25, 0.75], losses: [Float] = [2, 4]
        final class Outcome: @unchecked Sendable {
            let lock = NSLock()
            var results = [[[Float]?]](repeating: [], count: 2), totals = [Float](repeating: 0, count: 2)
        }
        let outcome = Outcome()
        // One thread per rank (not concurrentPerform, which may run both ranks on one thread).
        let done = DispatchSemaphore(value: 0)
        for rank in 0..<2 {
            Thread {
                let parameters: NamedParameters = [("a", Tensor(shape: [4], data: [0, 0, 0, 0])), ("b", Tensor(shape: [3], data: [0, 0, 0])),
                                                   ("c", Tensor(shape: [2], data: [0, 0]))]
                for (p, grad) in zip(parameters, grads[rank]) { p.tensor.grad = grad }
                let synchronizer = GradientSynchronizer(group: ThreadedGroup.Member(shared, rank: rank), parameters: parameters, bucketFloats: 5)
                let total = try? synchronizer.synchronize(loss: losses[rank], weight: weights[rank])
                outcome.lock.withLock {
                    outcome.results[rank] = parameters.map(\.tensor.grad)
                    outcome.totals[rank] = total ?? .nan
                }
                done.signal()
            }.start()
        }
        done.wait()
        done.wait()
        for rank in 0..<2 {
            #expect(outcome.results[rank][0] == [7.75, 15.5, 23.25, 31])
            #expect(outcome.results[rank][1] == [1.25, 1.5, 1.75])
            #expect(outcome.results[rank][2] == nil)
            #expect(outcome.totals[rank] == 3.5)
        }
    }

    @Test func disagreementsNameTheInputAndTheRank() {
        typealias Report = InputAgreement.Report
        let same = [InputAgreement.Fingerprint("anchor model", "aa"), .init("training data", String(repeating: "b", count: 64))]
        var other = same
        other[1].digest = String(repeating: "c", count: 64)
        #expect(InputAgreement.disagreement([Report(host: "h0", fingerprints: same), Report(host: "h1", fingerprints: same)]) == nil)
        let message = InputAgreement.disagreement([Report(host: "h0", fingerprints: same), Report(host: "h1", fingerprints: other)])
        #expect(message?.hasPrefix("ranks disagree on the training data: rank 1 (h1) has sha256 cccccccccccc...") == true)
        let failed = InputAgreement.disagreement([Report(host: "h0", fingerprints: same), Report(host: "h1", failure: "x.jsonl: cannot read the file")])
        #expect(failed == "rank 1 of 2 (h1): x.jsonl: cannot read the file")
        let everywhere = InputAgreement.disagreement([Report(host: "h0", failure: "bad"), Report(host: "h1", failure: "bad")])
        #expect(everywhere == "bad")
    }
}
