import Foundation

/// A grouped bar chart as a standalone SVG (no plotting library needed).
///
/// Layout, top to bottom: title, plot area (bars with their values, one decimal so 1.5 does
/// not read as 2), group labels, then the legend in its own band, so the legend can never
/// cover a bar. Legend entries are laid out left to right by their estimated text width and
/// wrap onto further rows when they do not fit.
struct BarChart {
    var title: String
    var groups: [String]
    /// Series name and one value (0-100) per group.
    var series: [(name: String, values: [Double])]
    var colors = ["#8c8c8c", "#4e79a7", "#e15759", "#59a14f", "#f28e2b"]

    /// Geometry shared by the drawing and the tests.
    static let fontSize = 12.0
    /// A generous width per character of 12-px sans-serif text, so estimates err wide.
    static let characterWidth = 7.5
    static let legendRowHeight = 20.0
    static let swatch = 12.0

    /// Legend entries as (series index, x, row), wrapped to fit `width`.
    static func legendLayout(names: [String], width: Double, left: Double) -> [(index: Int, x: Double, row: Int)] {
        var out: [(Int, Double, Int)] = []
        var x = left, row = 0
        for (i, name) in names.enumerated() {
            let entry = swatch + 6 + Double(name.count) * characterWidth + 24
            if x > left && x + entry > width - 10 { (x, row) = (left, row + 1) }
            out.append((i, x, row))
            x += entry
        }
        return out
    }

    func svg(width: Int = 720, plotHeight: Int = 250) -> String {
        let left = 50.0, right = 20.0, top = 40.0
        let plotW = Double(width) - left - right, plotH = Double(plotHeight)
        let legend = Self.legendLayout(names: series.map(\.name), width: Double(width), left: left)
        let rows = (legend.map(\.row).max() ?? 0) + 1
        let legendTop = top + plotH + 34  // below the group labels
        let height = Int(legendTop + Double(rows) * Self.legendRowHeight + 10)
        let groupW = plotW / Double(max(groups.count, 1))
        let barW = groupW * 0.8 / Double(max(series.count, 1))
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"\(Int(Self.fontSize))\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"\(width / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>"]
        for tick in stride(from: 0, through: 100, by: 25) {
            let y = top + plotH * (1 - Double(tick) / 100)
            out.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", left, y, left + plotW, y))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>", left - 6, y + 4, tick))
        }
        for (g, group) in groups.enumerated() {
            let x0 = left + Double(g) * groupW + groupW * 0.1
            for (s, entry) in series.enumerated() {
                let v = max(0, min(100, entry.values[g]))
                let h = plotH * v / 100, x = x0 + Double(s) * barW
                out.append(String(format: "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"/>",
                                  x, top + plotH - h, barW - 2, h, colors[s % colors.count]))
                out.append(String(format: "<text class=\"value\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%.1f</text>",
                                  x + barW / 2 - 1, top + plotH - h - 3, v))
            }
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>",
                              x0 + groupW * 0.4, top + plotH + 18, escape(group)))
        }
        for (s, x, row) in legend {
            let y = legendTop + Double(row) * Self.legendRowHeight
            out.append(String(format: "<rect class=\"legend\" x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"%@\"/>",
                              x, y, Self.swatch, Self.swatch, colors[s % colors.count]))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>", x + Self.swatch + 6, y + 10, escape(series[s].name)))
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
