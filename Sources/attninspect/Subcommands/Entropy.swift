import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect entropy FILE [-o OUT]`: layers × heads entropy.
    struct Entropy: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "entropy",
            abstract: "Mean row entropy (nats) of every head: a layers × heads table, or an image with one cell per head.")

        @OptionGroup var input: InputOptions

        @Option(name: [.short, .customLong("output")], help: "Also write the table as an image (.png, .pgm, .ppm) or raw values (.npy): rows are layers, columns heads.")
        var output: String?

        @Option(help: "The colormap of a .png or .ppm.")
        var colormap: Colormap = .viridis

        @Option(parsing: .unconditional, help: "Map LO:HI to the ends of the scale (default: min and max).")
        var range: ValueRange?

        @Flag(help: "Add a colour bar with the numbers of the range under the picture.")
        var legend = false

        @Option(parsing: .unconditional, help: "Enlarge each cell to N×N pixels.")
        var zoom: Int?

        @Flag(help: "Divide by ln(keys): 1 is uniform attention.")
        var normalized = false

        func validate() throws {
            if let output {
                try ImageOptions(output: output, colormap: colormap, range: range, zoom: zoom).validate()
            }
        }

        func run() throws {
            let opened = try input.open()
            let source = opened.source
            var values: [Float] = []
            var table = TextTable(header: ["layer"] + (0..<source.headCount).map { "h\($0)" })
            for l in 0..<source.layerCount {
                let stats = try HeadStatistics.ofLayer(source, layer: l)
                let row = stats.map { normalized ? $0.normalizedEntropy : $0.entropy }
                values += row.map(Float.init)
                table.append(["\(l)"] + row.map { formatFixed($0, decimals: 3) })
            }
            Console.print("\(normalized ? "normalised entropy (1 = uniform)" : "entropy (nats)"), layers × heads:\n" + table.render())
            if let output {
                let map = Matrix(rows: source.layerCount, columns: source.headCount, values: values)
                try ImageOptions(output: output, colormap: colormap, range: range, zoom: zoom, legend: legend)
                    .write(map, what: "entropy, \(source.layerCount) layers × \(source.headCount) heads", input: input.file)
            }
        }
    }
}

extension ImageOptions {
    init(output: String, colormap: Colormap, range: ValueRange?, zoom: Int?, legend: Bool = false) {
        self.init()
        self.output = output
        self.colormap = colormap
        self.range = range.map(RangeOption.fixed)
        self.zoom = zoom
        self.legend = legend
        // Options built by hand must all be set: their defaults apply only when parsed.
        self.overlay = nil
        self.alpha = 0.5
        self.resample = .bilinear
        self.fit = .exact
    }
}
