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
            abstract:
                "Mean row entropy (nats) of every head: a layers × heads table, or an image with one cell per head.")

        @OptionGroup var input: InputOptions

        @Option(
            name: [.short, .customLong("output")],
            help:
                """
                Also write the table as an image (.png, .pgm, .ppm) or raw values (.npy): rows are layers, \
                columns heads.
                """
        )
        var output: String?

        @OptionGroup var picture: PictureOptions

        @Flag(help: "Divide by ln(keys): 1 is uniform attention.")
        var normalized = false

        func validate() throws {
            if let problem = writer?.problem { throw ValidationError(problem) }
        }

        /// The writer of `-o`, when there is one.
        var writer: MapWriter? {
            output.map {
                MapWriter(
                    output: $0, colormap: picture.colormap, scale: picture.range, legend: picture.legend,
                    zoom: picture.zoom, note: { Console.note($0) })
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
            Console.print(
                "\(normalized ? "normalised entropy (1 = uniform)" : "entropy (nats)"), layers × heads:\n"
                    + table.render())
            if output != nil {
                let map = Matrix(rows: source.layerCount, columns: source.headCount, values: values)
                try writer?.write(
                    map, what: "entropy, \(source.layerCount) layers × \(source.headCount) heads", input: input.file)
            }
        }
    }
}
