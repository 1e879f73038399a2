#if canImport(Glibc)
    import Glibc
#endif
import AttnCore
import AttnReader

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// What every fuzz target does with one input: write the bytes to a scratch file with the format's
/// extension, then open it as a dump, resolve the attention and read its first layers both ways (whole
/// layer and row blocks). Any error must be an `AttnError` or `AnalysisError`; a crash, a hang or an
/// allocation beyond libFuzzer's limit is a finding.
public enum FuzzHarness {
    nonisolated(unsafe) private static var paths: [String: String] = [:]

    /// Runs libFuzzer's driver (`LLVMFuzzerRunDriver`, LLVM ≥ 11) on `target` with the process's arguments.
    public static func runDriver(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
        // As the executable does at start-up: contiguous layers are then read through mappings, as in the tool.
        MappingGuard.install()
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        return LLVMFuzzerRunDriver(&argc, &argv, target)
    }

    public static func run(_ data: UnsafePointer<UInt8>, _ size: Int, suffix: String) {
        let path = scratchPath(suffix)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { fatalError("cannot write \(path)") }
        var done = 0
        while done < size {
            let n = write(fd, data + done, size - done)
            if n <= 0 { break }
            done += n
        }
        close(fd)
        do {
            let dump = try DumpFile(path: path)
            // What info shows: every name and attribute, escaped for the terminal (safetensors metadata is parsed
            // JSON: strings with escapes and surrogates reach here).
            for tensor in dump.tensors {
                precondition(!PrintableText.escaped(tensor.name).unicodeScalars.contains { $0.value < 0x20 })
            }
            for attribute in dump.attributes {
                _ = PrintableText.escaped(attribute.name + " = " + attribute.value.description)
            }
            _ = dump.attribute("patch_grid")?.integerValues
            _ = dump.unreadableTokenLabels()
            _ = try dump.tokenLabels()
            _ = try Padding.selection(in: dump, positions: 4, batch: nil, length: nil)
            let layout = try AttentionLayout.resolve(dump, options: ReadOptions())
            guard case .attention(let source) = layout else { return }
            for l in 0..<min(source.layerCount, 2) {
                _ = try source.layer(l)
                try source.visitBlocks(layer: l, heads: 0..<source.headCount, workers: 1) { _, values in
                    precondition(values.count % max(source.keyCount, 1) == 0)
                }
            }
        } catch is AttnError {
        } catch is AnalysisError {
        } catch {
            fatalError("unexpected error type: \(error)")
        }
    }

    private static func scratchPath(_ suffix: String) -> String {
        if let p = paths[suffix] { return p }
        let folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        let p = "\(folder)/attninspect-fuzz-\(getpid())\(suffix)"
        paths[suffix] = p
        return p
    }
}
