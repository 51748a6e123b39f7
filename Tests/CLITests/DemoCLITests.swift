import Foundation
import Testing

/// `calm demo` on the shipped models (few examples per cell) and its plot; help texts.
@Suite("calm demo and help texts")
struct DemoCLITests {
    @Test func demoSaysWhereThePlotIsAndThePlotKeepsLegendAndBarsApart() throws {
        let dir = try makeTemporaryDirectory()
        let run = try CLI.run(["demo", "--limit", "4", "--work", "\(dir)/work", "--plot", "\(dir)/plots/kv.svg"], directory: CLI.root)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("wrote the plot to \(dir)/plots/kv.svg"), "\(run.stdout)")
        // Shipped key maps are compared, not rewritten.
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/work/kv"))

        let svg = try String(contentsOfFile: "\(dir)/plots/kv.svg", encoding: .utf8)
        func numbers(_ pattern: String) -> [Double] {
            let regex = try! NSRegularExpression(pattern: pattern)
            return regex.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map {
                Double(svg[Range($0.range(at: 1), in: svg)!])!
            }
        }
        let barBottoms = zip(numbers("class=\"bar\" x=\"[0-9.]+\" y=\"([0-9.]+)\""),
                             numbers("class=\"bar\" x=\"[0-9.]+\" y=\"[0-9.]+\" width=\"[0-9.]+\" height=\"([0-9.]+)\"")).map(+)
        let legendTops = numbers("class=\"legend\" x=\"[0-9.]+\" y=\"([0-9.]+)\"")
        #expect(barBottoms.count == 12 && legendTops.count == 3)
        #expect(legendTops.min()! > barBottoms.max()! + 20, "legend at \(legendTops), bars end at \(barBottoms.max()!)")
        // Values carry one decimal (1.5 must not read as 2).
        let values = numbers("class=\"value\"[^>]*>([0-9.]+)<")
        #expect(values.count == 12)
        #expect(svg.components(separatedBy: "class=\"value\"").dropFirst().allSatisfy { $0.range(of: #">\d+\.\d<"#, options: .regularExpression) != nil })
    }

    @Test func composeHelpDescribesItsOwnSteps() throws {
        let help = try CLI.run(["compose", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--steps"))
        #expect(!help.stdout.contains("pretrain:"), "\(help.stdout)")
        let pretrain = try CLI.run(["pretrain", "--help"])
        // Help text wraps at the terminal width: compare with whitespace collapsed.
        let words = pretrain.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("--steps 0 writes the untrained model"))
    }
}
