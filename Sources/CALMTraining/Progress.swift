import Foundation

/// Reports training progress: a redrawn bar on a terminal, plain log lines otherwise.
public final class ProgressReporter {
    public let totalSteps: Int
    public let interactive: Bool
    public let logEvery: Int
    private let start = Date()
    private var startStep: Int?
    /// The step and time of the last reported line: seconds per step are measured since then.
    private var lastReport: (step: Int, time: Date)?
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

    /// After update `step` (1-based). Seconds per step are wall-clock time per step since the
    /// previous line (data loading, evaluation and checkpoints included).
    public func update(step: Int, loss: Float, tokensPerSecond: Double, learningRate: Float) {
        if startStep == nil { startStep = step - 1 }
        let done = step - (startStep ?? 0)
        let now = Date()
        let elapsed = now.timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(totalSteps - step) : 0
        let since = lastReport ?? (startStep ?? 0, start)
        let secondsPerStep = step > since.step ? now.timeIntervalSince(since.time) / Double(step - since.step) : 0
        let stats = String(format: "step %d/%d | loss %.4f | %.0f tok/s | %.2f s/step | lr %.2e | ETA %@",
                           step, totalSteps, loss, tokensPerSecond, secondsPerStep, learningRate, Self.clock(eta))
        if interactive {
            lastReport = (step, now)
            let width = 24
            let filled = totalSteps > 0 ? min(width, width * step / totalSteps) : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\r\u{1B}[2K[\(bar)] \(stats)")
        } else if step % logEvery == 0 || step == totalSteps {
            lastReport = (step, now)
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
