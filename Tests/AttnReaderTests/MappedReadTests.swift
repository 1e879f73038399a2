import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnReader

/// Contiguous layers are read through a memory map (DirectRows.visitMapped). These check that it reads what
/// `pread` reads, and that a file cut short while mapped ends in an error naming it instead of SIGBUS.
@Suite("Mapped reads", .serialized)
struct MappedReadTests {
    /// The executable installs the SIGBUS guard at start-up; without it nothing is mapped.
    init() { MappingGuard.install() }

    /// The address ranges of `/proc/self/maps` that map `path`.
    func mappings(of path: String) throws -> [Range<UInt>] {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        // Read with read(2), retrying when a signal interrupts it: the other suites' child processes end meanwhile.
        let bytes = try #require(Descriptors.readFile("/proc/self/maps"))
        let text = String(decoding: bytes, as: UTF8.self)
        return text.split(separator: "\n").compactMap { line in
            guard line.hasSuffix(" " + target), let dash = line.firstIndex(of: "-"),
                let space = line.firstIndex(of: " "),
                let low = UInt(line[..<dash], radix: 16),
                let high = UInt(line[line.index(after: dash)..<space], radix: 16)
            else { return nil }
            return low..<high
        }
    }

    /// Every block of every head of `layer`, keyed by head and first row, with mapping on or off; how many blocks
    /// were handed on while the file was mapped, and how many from inside that mapping (native float32 in place).
    func blocks(_ path: String, layer: Int, mapped: Bool) throws -> (
        values: [String: [UInt32]], whileMapped: Int, inPlace: Int
    ) {
        guard
            case .attention(let stored) = try AttentionLayout.resolve(try DumpFile(path: path), options: ReadOptions())
        else {
            Issue.record("\(path) is not stored attention")
            return ([:], 0, 0)
        }
        DirectRows.mapsFiles.store(mapped, ordering: .relaxed)
        defer { DirectRows.mapsFiles.store(true, ordering: .relaxed) }
        var seen: [String: [UInt32]] = [:]
        var inPlace = 0, whileMapped = 0
        let lock = NSLock()
        try stored.visitBlocks(layer: layer, heads: 0..<stored.headCount, workers: 2) { block, values in
            let bits = values.map(\.bitPattern)
            // While the layer is being read its mapping is in place: is this block inside it?
            let address = UInt(bitPattern: values.baseAddress)
            let ranges = try mappings(of: path)
            let mappedHere = ranges.contains { $0.contains(address) }
            lock.withLock {
                seen["\(block.head)/\(block.rows.lowerBound)"] = bits
                if !ranges.isEmpty { whileMapped += 1 }
                if mappedHere { inPlace += 1 }
            }
        }
        return (seen, whileMapped, inPlace)
    }

    @Test(
        """
        mapped blocks are bit for bit the blocks read with pread (NPY, HDF5, safetensors; f16, bf16, f32, f64, \
        big-endian, a batch axis, a user block)
        """,
        arguments: [
            "real/minilm6_pride_LHSS_f32.npy", "real/minilm6_zen_layers_f16.h5",
            "synthetic/base_f32.npy", "synthetic/base_f16.npy", "synthetic/base_f32_be.npy", "synthetic/base_f64.npy",
            "synthetic/single_f32.h5", "synthetic/layouts/big_endian.h5", "synthetic/layouts/userblock.h5",
            "synthetic/exporters/hf_text_batch.h5", "synthetic/single_f64_batch.h5",
            "synthetic/safetensors/base_f32.safetensors", "synthetic/safetensors/base_bf16.safetensors"
        ])
    func sameAsPread(_ name: String) throws {
        let path = Fixtures.path(name)
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("fixture \(name) is missing")
            return
        }
        let mapped = try blocks(path, layer: 1, mapped: true)
        let read = try blocks(path, layer: 1, mapped: false)
        #expect(!mapped.values.isEmpty)
        #expect(mapped.values == read.values)
        // Each pass took the path it was meant to: every block read while the file was mapped; with pread, no
        // block from inside a mapping. (Whether the file is mapped at all during the pread pass is not checked:
        // another test may have the same small file open, and files up to 64 MiB stay mapped while open.)
        #expect(mapped.whileMapped == mapped.values.count)
        #expect(read.inPlace == 0)
        // Native float32 is handed on where it lies in the mapping, every block of it; other types are decoded.
        let nativeF32 = [
            "minilm6_pride_LHSS_f32.npy", "base_f32.npy", "single_f32.h5", "userblock.h5", "hf_text_batch.h5",
            "base_f32.safetensors"
        ].contains { name.hasSuffix($0) }
        #expect(mapped.inPlace == (nativeF32 ? mapped.values.count : 0))
    }

    @Test("a mapped page past the end of a file cut meanwhile reads as zeros and is noted, instead of SIGBUS")
    func guardedFault() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("attninspect-guard-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("bytes").path
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        try Data(repeating: 7, count: 8 * page).write(to: URL(fileURLWithPath: path))
        let file = try ReadOnlyFile(path: path)
        let mapped = try #require(file.mapped(at: 100, count: 8 * page - 100))
        #expect(mapped.bytes[0] == 7 && !mapped.faulted)
        #expect(truncate(path, off_t(3 * page)) == 0)
        #expect(mapped.bytes[3 * page - 101] == 7 && !mapped.faulted)  // the last byte still in the file
        #expect(mapped.bytes[5 * page] == 0)  // a page now past the end
        #expect(mapped.faulted)
        #expect(mapped.bytes[5 * page + 1] == 0 && mapped.bytes[6 * page] == 0)
        #expect(file.currentSize() == 3 * page)
    }

    /// A [2, 4, 256, 256] float32 or float16 NPY of rows that each sum to 1 (1 MiB or 512 KiB per layer).
    func writeDump(_ path: String, descr: String) throws -> Int {
        let shape = [2, 4, 256, 256]
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (2, 4, 256, 256), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data(
            [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        let dataOffset = data.count
        let count = shape.reduce(1, *)
        if descr == "<f4" {
            var value = Float(1.0 / 256).bitPattern.littleEndian
            let one = withUnsafeBytes(of: &value) { Array($0) }
            for _ in 0..<count { data.append(contentsOf: one) }
        } else {
            let one: [UInt8] = [0x00, 0x1c]  // float16 1/256 = 2^-8: exponent 7, little-endian 0x1c00
            for _ in 0..<count { data.append(contentsOf: one) }
        }
        try data.write(to: URL(fileURLWithPath: path))
        return dataOffset
    }

    @Test(
        "a dump truncated after it was opened: one error naming the file, for a cut past a page and inside one",
        arguments: ["<f4", "<f2"], [true, false])
    func truncatedWhileMapped(descr: String, pageCut: Bool) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "attninspect-mapped-\(getpid())-\(descr.utf8.last!)-\(pageCut)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("dump.npy").path
        let dataOffset = try writeDump(path, descr: descr)
        let file = try DumpFile(path: path)
        guard case .attention(let stored) = try AttentionLayout.resolve(file, options: ReadOptions()) else {
            Issue.record("not stored attention")
            return
        }
        // Layer 0 is whole: it reads as written.
        var sum = 0.0
        let lock = NSLock()
        try stored.visitBlocks(layer: 0, heads: 0..<4, workers: 2) { _, values in
            let s = values.reduce(0.0) { $0 + Double($1) }
            lock.withLock { sum += s }
        }
        #expect(sum == 4 * 256)
        // Layer 1 cut: past a page boundary (its later pages fault) or 100 bytes before its end (inside a page, no
        // fault).
        let layerBytes = 4 * 256 * 256 * (descr == "<f4" ? 4 : 2)
        let end = dataOffset + 2 * layerBytes
        #expect(truncate(path, off_t(pageCut ? dataOffset + layerBytes + layerBytes / 3 : end - 100)) == 0)
        do {
            // The values are read, as an analysis would: a page past the new end faults (f32 in place, f16 decoded).
            try stored.visitBlocks(layer: 1, heads: 0..<4, workers: 2) { _, values in
                let s = values.reduce(0.0) { $0 + Double($1) }
                lock.withLock { sum += s }
            }
            Issue.record("reading the cut layer did not fail")
        } catch let error as AttnError {
            #expect(error.description.contains(path))
            #expect(error.description.contains("file changed while it was read"))
        }
    }
}
