import CALMTensor
import Foundation

/// Where a training step's wall-clock time goes, per op family (`calm bench --profile`).
struct StepProfile {
    var total = 0.0, optimizer = 0.0
    var forward = [Double](repeating: 0, count: OpFamily.allCases.count)
    var backward = [Double](repeating: 0, count: OpFamily.allCases.count)

    /// Mean over `steps` steps of loss, backward and update, recorded by `OpProfile`.
    static func measure(steps: Int, zeroGradients: () -> Void, loss: () -> Tensor, update: () -> Void) -> StepProfile {
        var p = StepProfile()
        for _ in 0..<steps {
            zeroGradients()
            let start = DispatchTime.now().uptimeNanoseconds
            OpProfile.start()
            let l = loss()
            OpProfile.mark()  // the gap before backward is not an op's
            l.backward()
            OpProfile.stop()
            let beforeUpdate = DispatchTime.now().uptimeNanoseconds
            update()
            let end = DispatchTime.now().uptimeNanoseconds
            p.total += Double(end - start) / 1e9
            p.optimizer += Double(end - beforeUpdate) / 1e9
            for f in OpFamily.allCases {
                p.forward[f.rawValue] += OpProfile.forwardSeconds[f.rawValue]
                p.backward[f.rawValue] += OpProfile.backwardSeconds[f.rawValue]
            }
        }
        let n = Double(steps)
        p.total /= n; p.optimizer /= n
        p.forward = p.forward.map { $0 / n }; p.backward = p.backward.map { $0 / n }
        return p
    }

    /// One row per op family with any time, then the optimizer and what no op accounts for.
    static func table(_ columns: [(String, StepProfile)], title: String) -> String {
        func ms(_ s: Double) -> String { String(format: "%9.1f", s * 1e3) }
        func share(_ s: Double, _ p: StepProfile) -> String { String(format: "%5.1f%%", 100 * s / p.total) }
        let label = 24
        var lines = [title]
        let blank = String(repeating: " ", count: label)
        lines.append(blank + columns.map { "  " + $0.0.padding(toLength: 26, withPad: " ", startingAt: 0) }.joined())
        lines.append("op family".padding(toLength: label, withPad: " ", startingAt: 0)
                     + String(repeating: "    forward backward   share", count: columns.count))
        func row(_ name: String, _ values: (StepProfile) -> (Double, Double?)) {
            var line = name.padding(toLength: label, withPad: " ", startingAt: 0)
            for (_, p) in columns {
                let (f, b) = values(p)
                line += "  " + ms(f) + (b.map(ms) ?? String(repeating: " ", count: 9)) + "  " + share(f + (b ?? 0), p)
            }
            lines.append(line)
        }
        for f in OpFamily.allCases where columns.contains(where: { $0.1.forward[f.rawValue] + $0.1.backward[f.rawValue] > 0 }) {
            row(f.name) { ($0.forward[f.rawValue], $0.backward[f.rawValue]) }
        }
        row("optimizer (AdamW)") { ($0.optimizer, nil) }
        row("other (graph, glue)") { p in (p.total - p.optimizer - p.forward.reduce(0, +) - p.backward.reduce(0, +), nil) }
        row("step") { ($0.total, nil) }
        return lines.joined(separator: "\n") + "\n"
    }
}
