import ArgumentParser
import AttnCore
import AttnRender

extension AttnInspect {
    /// `attninspect merge PART...`: the `stats --json` of shards of one run joined into one document.
    struct Merge: ParsableCommand, GlobalOptions {
        static let configuration = CommandConfiguration(
            commandName: "merge",
            abstract:
                """
                Join the stats --json of shards of one run (stats FILE --layers A:B --json, one process per range of \
                layers) into the document one run prints.
                """,
            discussion:
                """
                Each part holds whole layers, so the join is exact: the same bytes as stats FILE --json over the \
                layers the parts hold. The parts must come from the same file, options and version, and hold \
                different layers; layers no part holds are named on stderr.
                """
        )

        @Argument(help: "The parts: stats --json documents, each of one range of layers of one file.")
        var parts: [String]

        @Flag(name: [.customShort("q"), .long], help: "Print nothing on stderr but errors.")
        var quiet = false

        var isQuiet: Bool { quiet }
        var forcesOutput: Bool { false }

        /// A part's largest size: a stats --json of 1,000 layers × 100 heads is about 60 MB.
        static let partLimit = 1 << 30

        func validate() throws {
            if parts.isEmpty { throw ValidationError("give the parts to join: attninspect merge part*.json") }
        }

        func run() throws {
            let documents = try parts.map { path in
                let bytes = try WholeFile.read(
                    path, limit: Self.partLimit, expected: "a stats --json document",
                    tooLarge: "a stats --json document (at most 1 GiB)")
                do {
                    return (name: path, document: try JSONReader.parse(bytes))
                } catch let failure as JSONReader.Failure {
                    throw AttnError(file: path, "\(failure): expected a stats --json document")
                }
            }
            let merged = try StatsMerge.merge(documents)
            if !merged.missingLayers.isEmpty {
                Console.note(
                    """
                    no part holds layer\(merged.missingLayers.count > 1 ? "s" : "") \
                    \(Self.ranges(merged.missingLayers)): the result is that of the layers the parts hold
                    """)
            }
            Console.print(merged.document.serialized() + "\n")
        }

        /// `[0, 1, 2, 5]` as "0–2, 5".
        static func ranges(_ numbers: [Int]) -> String {
            var runs: [String] = []
            var start = numbers[0], last = numbers[0]
            for n in numbers.dropFirst() + [Int.min] {
                if n == last + 1 {
                    last = n
                    continue
                }
                runs.append(start == last ? "\(start)" : "\(start)–\(last)")
                (start, last) = (n, n)
            }
            return runs.joined(separator: ", ")
        }
    }
}
