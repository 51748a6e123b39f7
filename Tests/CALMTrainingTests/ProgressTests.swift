import CALMTraining
import Foundation
import Testing

@Suite("Training progress lines")
struct ProgressTests {
    /// Plain log lines every `logEvery` steps and at the last, each with the step, loss, tokens
    /// per second, seconds per step and ETA, and the label in front.
    @Test func linesCarryEveryFigureInOrder() throws {
        let pipe = Pipe()
        let reporter = ProgressReporter(totalSteps: 5, logEvery: 2, interactive: false, output: pipe.fileHandleForWriting, label: "run")
        for step in 1...5 { reporter.update(step: step, loss: Float(step) / 4, tokensPerSecond: 100 * Double(step), learningRate: 1e-3) }
        try pipe.fileHandleForWriting.close()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(text)")
        let pattern = try Regex(#"^\[run\] step (\d)/5 \| loss (\S+) \| (\d+) tok/s \| (\d+\.\d\d) s/step \| lr 1\.00e-03 \| ETA \d\d:\d\d$"#)
        for (line, step) in zip(lines, [2, 4, 5]) {
            let match = try #require(try pattern.wholeMatch(in: line), "\(line)")
            #expect(match.output[1].substring.map(String.init) == "\(step)")
            #expect(match.output[2].substring.map(String.init) == String(format: "%.4f", Float(step) / 4))
            #expect(match.output[3].substring.map(String.init) == "\(100 * step)")
            #expect((match.output[4].substring.flatMap { Double($0) } ?? -1) >= 0)
        }
    }
}
