import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnReader

/// Contiguous layers are read through a memory map (DirectRows.visitMapped). These check that it reads what
/// `pread` reads, and that a file cut short while mapped ends in an error naming it instead of SIGBUS.
@Suite("Mapped reads", .serialized)
struct MappedReadTests {
    /// Every block of every head of `layer`, keyed by head and first row, with mapping on or off.
    func blocks(_ path: String, layer: Int, mapped: Bool) throws -> [String: [UInt32]] {
        guard case .attention(let stored) = try AttentionLayout.resolve(try DumpFile(path: path), options: ReadOptions()) else {
            Issue.record("\(path) is not stored attention")
            return [:]
        }
        DirectRows.mapsFiles.store(mapped, ordering: .relaxed)
        defer { DirectRows.mapsFiles.store(true, ordering: .relaxed) }
        var seen: [String: [UInt32]] = [:]
        let lock = NSLock()
        try stored.visitBlocks(layer: layer, heads: 0..<stored.headCount, workers: 2) { block, values in
            let bits = values.map(\.bitPattern)
            lock.withLock { seen["\(block.head)/\(block.rows.lowerBound)"] = bits }
        }
        return seen
    }

    @Test("mapped blocks are bit for bit the blocks read with pread",
          arguments: ["real/minilm6_pride_LHSS_f32.npy", "real/vits14_board_small.h5", "real/minilm6_zen_layers_f16.h5",
                      "synthetic/base_f32.npy", "synthetic/base_f16.npy", "synthetic/base_f32_be.npy", "synthetic/base_f64.npy"])
    func sameAsPread(_ name: String) throws {
        let path = Fixtures.path(name)
        guard FileManager.default.fileExists(atPath: path) else { return }
        let mapped = try blocks(path, layer: 1, mapped: true)
        let read = try blocks(path, layer: 1, mapped: false)
        #expect(!mapped.isEmpty)
        #expect(mapped == read)
    }

    /// A [2, 4, 256, 256] float32 or float16 NPY of rows that each sum to 1 (1 MiB or 512 KiB per layer).
    func writeDump(_ path: String, descr: String) throws -> Int {
        let shape = [2, 4, 256, 256]
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (2, 4, 256, 256), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        let dataOffset = data.count
        let count = shape.reduce(1, *)
        if descr == "<f4" {
            var value = Float(1.0 / 256).bitPattern.littleEndian
            let one = withUnsafeBytes(of: &value) { Array($0) }
            for _ in 0..<count { data.append(contentsOf: one) }
        } else {
            let one: [UInt8] = [0x00, 0x1c]   // float16 1/256 = 2^-8: exponent 7, little-endian 0x1c00
            for _ in 0..<count { data.append(contentsOf: one) }
        }
        try data.write(to: URL(fileURLWithPath: path))
        return dataOffset
    }

    @Test("a dump truncated after it was opened: one error naming the file, for a cut past a page and inside one",
          arguments: ["<f4", "<f2"], [true, false])
    func truncatedWhileMapped(descr: String, pageCut: Bool) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("attninspect-mapped-\(getpid())-\(descr.utf8.last!)-\(pageCut)")
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
        // Layer 1 cut: past a page boundary (its later pages fault) or 100 bytes before its end (inside a page, no fault).
        let layerBytes = 4 * 256 * 256 * (descr == "<f4" ? 4 : 2)
        let end = dataOffset + 2 * layerBytes
        #expect(truncate(path, off_t(pageCut ? dataOffset + layerBytes + layerBytes / 3 : end - 100)) == 0)
        do {
            try stored.visitBlocks(layer: 1, heads: 0..<4, workers: 2) { _, _ in }
            Issue.record("reading the cut layer did not fail")
        } catch let error as DumpError {
            #expect(error.description.contains(path))
            #expect(error.description.contains("file changed while it was read"))
        }
    }
}
