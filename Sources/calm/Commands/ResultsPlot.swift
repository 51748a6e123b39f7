import Foundation

/// A grouped bar chart as a standalone SVG (no plotting library needed).
struct BarChart {
    var title: String
    var groups: [String]
    /// Series name and one value (0-100) per group.
    var series: [(name: String, values: [Double])]
    var colors = ["#8c8c8c", "#4e79a7", "#e15759", "#59a14f", "#f28e2b"]

    func svg(width: Int = 720, height: Int = 360) -> String {
        let left = 50.0, right = 20.0, top = 40.0, bottom = 70.0
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        let groupW = plotW / Double(max(groups.count, 1))
        let barW = groupW * 0.8 / Double(max(series.count, 1))
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">",
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
                out.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"/>",
                                  x, top + plotH - h, barW - 2, h, colors[s % colors.count]))
                out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%.0f</text>",
                                  x + barW / 2 - 1, top + plotH - h - 3, v))
            }
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>",
                              x0 + groupW * 0.4, top + plotH + 18, escape(group)))
        }
        for (s, entry) in series.enumerated() {
            let x = left + Double(s) * 150
            out.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%@\"/>", x, Double(height) - 28, colors[s % colors.count]))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>", x + 16, Double(height) - 18, escape(entry.name)))
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
