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
        @OptionGroup var limit: WorkLimitOptions

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
            let source = try input.open().source
            try limit.checkRecomputation(source, layers: Array(0..<source.layerCount), file: input.file)
            let grid = try HeadStatistics.entropyGrid(source, normalized: normalized)
            Console.print(EntropyReport.table(grid, heads: source.headCount, normalized: normalized))
            try writer?.write(
                EntropyReport.map(grid, heads: source.headCount),
                what: "entropy, \(source.layerCount) layers × \(source.headCount) heads", input: input.file)
        }
    }
}
