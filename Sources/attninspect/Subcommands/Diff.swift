import ArgumentParser
import AttnCore
import AttnSource
import AttnReader
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect diff A B`: two dumps of the same shape compared head by head.
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract:
                """
                Compare two dumps of the same shape (a model before and after fine-tuning): per head the largest \
                |A − B| and the Jensen–Shannon divergence of the rows.
                """,
            discussion:
                """
                js_divergence is the mean over query rows of JS(A_row, B_row) in nats (0 = identical, at most ln \
                2). With -o, the difference of the head-fused maps of --layer is drawn with the diverging \
                coolwarm colormap on a range symmetric about 0.
                """
        )

        /// The first dump, and the input options, which apply to both.
        @OptionGroup var input: InputOptions
        @Argument(help: "The second dump (same layers, heads, queries and keys).") var second: String
        var first: String { input.file }

        @OptionGroup var format: ReportFormatOptions
        var json: Bool { format.json }
        var csv: Bool { format.csv }

        @Option(
            name: [.short, .customLong("output")],
            help: "Also draw A − B of --layer, fused with --head (.png, .ppm, .svg, or .npy for the values).")
        var output: String?

        @Option(
            parsing: .unconditional, help: "The layer drawn with -o (negative counts from the end: -1 is the last).")
        var layer: Int = -1

        @Option(parsing: .unconditional, help: "The head fusion drawn with -o: mean, max, min or a head index.")
        var head: HeadFusion = .mean

        func validate() throws {
            if let output, let problem = MapWriter(output: output).problem { throw ValidationError(problem) }
        }

        func run() throws {
            var other = input
            other.file = second
            let a = try input.open(), b = try other.open()
            let shapeA = (a.source.layerCount, a.source.headCount, a.source.queryCount, a.source.keyCount)
            let shapeB = (b.source.layerCount, b.source.headCount, b.source.queryCount, b.source.keyCount)
            guard shapeA == shapeB else {
                throw AttnError(
                    .analysis, file: second,
                    """
                    shape \(shapeB) (layers, heads, queries, keys) differs from \(first)'s \(shapeA): diff needs \
                    the same shape
                    """
                )
            }
            let records = try HeadDifference.ofSources(a.source, b.source)
            if json {
                Console.print(DiffReport.json(records, first: first, second: second))
            } else if csv {
                Console.printCSV(RecordWriter.csv(records))
            } else {
                Console.print(DiffReport.table(records))
            }
            if let output {
                let l = try a.layer(layer)
                let fusion = try a.fusion(head)
                let difference = try a.analysing {
                    try HeadDifference.map(try a.source.layer(l), try b.source.layer(l), fusion: fusion)
                }
                try MapWriter(
                    output: output, colormap: .coolwarm, scale: .fixed(DiffReport.range(of: difference)),
                    note: { Console.note($0) }
                )
                .write(
                    difference, what: "layer \(l) \(fusion): A − B", input: first, otherInputs: [second],
                    labels: a.source.tokens, columnLabels: a.source.keyTokens)
            }
        }
    }
}
