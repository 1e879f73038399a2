import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnReader
import AttnRender

extension AttnInspect {
    /// `attninspect tokens FILE --layer N --query I`: the sentence coloured by attention.
    struct Tokens: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tokens",
            abstract:
                "Print the tokens, each on a background coloured by the attention it receives from token --query.",
            discussion:
                "24-bit colour in a terminal; otherwise (a pipe, NO_COLOR, --color never) one line of `token (value)`.")

        @OptionGroup var input: InputOptions
        @OptionGroup var selection: OneMapOptions
        var layer: Int { selection.layer }
        var head: HeadFusion { selection.head }
        @OptionGroup var terminal: TerminalOptions
        var colormap: Colormap { terminal.colormap }
        var range: ValueRange? { terminal.range }

        @Option(parsing: .unconditional, help: "The token whose attention is shown (its row).")
        var query: Int = 0

        func run() throws {
            let opened = try input.open()
            guard query >= 0 && query < opened.source.queryCount else {
                throw AttnError(
                    .analysis, file: input.file,
                    "query \(query) is out of range: expected 0...\(opened.source.queryCount - 1)")
            }
            let l = try opened.layer(layer)
            let fusion = try opened.fusion(head)
            let (attention, row) = try opened.queryRow(layer: l, query: query)
            let map = try opened.analysing { try fusion.fuse(attention) }
            let values = Array(map.row(row))
            // The keys' labels: the tokens themselves for self-attention; for cross-attention the file's key labels
            // (key_tokens, ...); without labels, the positions, said in a note.
            let shown: [String]
            if let keys = opened.source.keyTokens {
                shown = keys
            } else {
                shown = (0..<values.count).map { "#\($0)" }
                Console.note(
                    opened.source.tokens == nil
                        ? """
                        \(input.file): no token labels (a `tokens` dataset or member, one label per token): tokens \
                        shown by position
                        """
                        : """
                        \(input.file): cross-attention to \(values.count) keys without key labels \
                        (\(DumpFile.keyTokenNames.joined(separator: ", "))): keys shown by position
                        """
                )
            }
            let queryLabel = opened.source.tokens.map { " " + Terminal.printable($0[query]) } ?? ""
            guard let scale = range ?? ValueRange.of(Matrix(rows: 1, columns: values.count, values: values)) else {
                throw AttnError(.analysis, file: input.file, "the row of token \(query) holds no finite values")
            }
            Console.note(
                """
                layer \(l), \(fusion): attention from token \(query)\(queryLabel), range \
                \(scale.low)...\(scale.high)
                """
            )
            if terminal.colourOn {
                Console.printVerbatim(Terminal.tokens(shown, values: values, range: scale, colormap: colormap))
            } else {
                Console.print(
                    zip(shown, values).map { "\(Terminal.printable($0)) (\(formatFixed(Double($1), decimals: 4)))" }
                        .joined(separator: " ") + "\n")
            }
        }
    }
}
