import Foundation

/// Reports training progress: a redrawn bar on a terminal, plain log lines otherwise.
public final class ProgressReporter {
    public let totalSteps: Int
    public let interactive: Bool
    public let logEvery: Int
    private let start = Date()
    private var startStep: Int?
    private let output: FileHandle
    /// Prefixes every line (several runs logging to one terminal); labelled reporters never
    /// redraw a bar.
    public let label: String?

    public init(totalSteps: Int, logEvery: Int = 10, interactive: Bool? = nil, output: FileHandle = .standardError,
                label: String? = nil) {
        self.totalSteps = totalSteps
        self.logEvery = max(1, logEvery)
        self.interactive = label == nil && (interactive ?? (isatty(output.fileDescriptor) != 0))
        self.output = output
        self.label = label
    }

    private func write(_ s: String) { output.write(Data(((label.map { "[\($0)] " } ?? "") + s).utf8)) }

    /// After update `step` (1-based).
    public func update(step: Int, loss: Float, tokensPerSecond: Double, learningRate: Float) {
        if startStep == nil { startStep = step - 1 }
        let done = step - (startStep ?? 0)
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(totalSteps - step) : 0
        let stats = String(format: "step %d/%d | loss %.4f | %.0f tok/s | lr %.2e | ETA %@",
                           step, totalSteps, loss, tokensPerSecond, learningRate, Self.clock(eta))
        if interactive {
            let width = 24
            let filled = totalSteps > 0 ? min(width, width * step / totalSteps) : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\r\u{1B}[2K[\(bar)] \(stats)")
        } else if step % logEvery == 0 || step == totalSteps {
            write(stats + "\n")
        }
    }

    /// A message on its own line (evaluation results, checkpoints).
    public func log(_ message: String) {
        write(interactive ? "\r\u{1B}[2K\(message)\n" : message + "\n")
    }

    public func finish() {
        if interactive { write("\n") }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }
}
