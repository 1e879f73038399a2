import ArgumentParser
import AttnCore
import AttnSource
import AttnReader
import AttnRender

extension AttnInspect {
    /// `attninspect info FILE`: what is in the file, and how it reads as attention.
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "info",
            abstract: "Show the tensors, attributes and attention view of a dump.")

        @OptionGroup var input: InputOptions

        func run() throws {
            let dump = try DumpFile(path: input.file)
            Console.print(InfoReport.contents(of: dump))
            // No layer is read here: a layer larger than --max-memory is reported below, not refused.
            let opened = try input.open(checksLayerMemory: false)
            let s = opened.source
            // Labels that were found but do not fit the attention are counted, to say why they are not used.
            let labels = s.tokens == nil ? try dump.tokenLabels(sample: input.batch)?.count : nil
            let keyLabels =
                s.isCrossAttention && s.keyTokens == nil
                ? try dump.tokenLabels(named: DumpFile.keyTokenNames, sample: input.batch)?.count : nil
            Console.print(InfoReport.attention(opened, labels: labels, keyLabels: keyLabels))
        }
    }
}
