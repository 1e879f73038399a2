internal import CAttnDeflate
import AttnCore
import Synchronization

/// Reads row blocks of one layer's heads straight from the file, on several threads at once. Contiguous
/// data is memory-mapped one layer at a time and handed on in place (native float32) or decoded to
/// `Float` block by block; chunked data is `pread` chunk by chunk into each worker's buffer and inflated
/// there. Nothing but one layer's mapping and a few blocks per worker is ever in memory, and libhdf5's
/// lock is taken only to locate chunks.
struct DirectRows {
    let storage: DirectStorage
    /// The tensor's shape; its last two axes are [query, key].
    let shape: [Int]
    /// The axis of `shape` that holds heads, if any.
    let headAxis: Int?
    /// The coordinates before [query, key] of head `h` of the layer being read.
    let leading: (Int) -> [Int]
    let file: String
    let dataset: String?

    private var queries: Int { shape[shape.count - 2] }
    private var keys: Int { shape[shape.count - 1] }

    /// About this many bytes of `Float` per block: large enough to amortise a `pread`, small enough
    /// to stay in a core's cache while the analysis runs over it.
    private static let blockBytes = 128 << 10
    /// The largest group of chunks (heads × chunk rows × keys) a worker may hold decoded.
    private static let chunkGroupLimit = 256 << 20

    /// nil when the chunks are too large to hold a group per worker.
    init?(
        storage: DirectStorage, shape: [Int], headAxis: Int?, file: String, dataset: String?,
        leading: @escaping (Int) -> [Int]
    ) {
        self.storage = storage
        self.shape = shape
        self.headAxis = headAxis
        self.leading = leading
        self.file = file
        self.dataset = dataset
        if case .chunked(_, let chunk, let type, _, _, _) = storage {
            let group = headAxis.map { chunk[$0] } ?? 1
            let bytes = MemoryBudget.bytes(
                [group, chunk[chunk.count - 2], shape[shape.count - 1]], elementSize: type.size)
            guard chunk.count == shape.count, let bytes, bytes <= Self.chunkGroupLimit,
                let chunkBytes = MemoryBudget.bytes(chunk, elementSize: type.size), chunkBytes <= Self.chunkGroupLimit
            else { return nil }
        }
    }

    /// `rowStatistics`: float16 rows are decoded with their statistics (`ElementDecoding.decodeRows`).
    func visit(heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor) throws {
        switch storage {
        case .contiguous(let raw, let offset, let type, let order):
            try visitContiguous(
                raw, offset: offset, type: type, order: order, heads: heads, workers: workers,
                rowStatistics: rowStatistics, body)
        case .chunked(let raw, let chunk, let type, let order, let filters, let locate):
            try visitChunked(
                raw, chunk: chunk, type: type, order: order, filters: filters, locate: locate,
                heads: heads, workers: workers, rowStatistics: rowStatistics, body)
        }
    }

    /// The C-order index of element `[coordinates..., 0, 0]`.
    private func flatIndex(_ coordinates: [Int]) -> Int {
        var flat = 0
        for (axis, c) in coordinates.enumerated() { flat = flat * shape[axis] + c }
        return flat * queries * keys
    }

    private func visitContiguous(
        _ raw: ReadOnlyFile, offset: Int, type: ElementType, order: ByteOrder,
        heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor
    ) throws {
        let q = queries, k = keys, size = type.size
        // At least four blocks per worker where the rows allow, so that the workers finish together.
        let rowsPerBlock = max(1, min(q, Self.blockBytes / (4 * k), (q + 4 * workers - 1) / (4 * workers)))
        // Work items are row blocks, each over every head: an analysis that sums heads (fusion)
        // then keeps the block's accumulators in cache while the heads go by.
        let blocks = (q + rowsPerBlock - 1) / rowsPerBlock
        let workerCount = min(workers, blocks)
        let counter = Workers.Counter(blocks, workers: workerCount)
        // Where each head's rows start in the file; the heads' bytes are mapped at once when they span at
        // most `mapLimit` bytes, and read block by block otherwise.
        let bases = heads.map { offset + flatIndex(leading($0)) * size }
        let low = bases.min() ?? offset, high = (bases.max() ?? offset) + q * k * size
        let mapped =
            Self.mapsFiles.load(ordering: .relaxed) && high - low <= Self.mapLimit
            ? raw.mapped(at: low, count: high - low) : nil
        // Native float32 in the mapping is handed on where it lies; anything else is decoded into `values`.
        let inPlace =
            mapped.map { m in
                type == .float32 && order == .native
                    && bases.allSatisfy {
                        (Int(bitPattern: m.bytes.baseAddress) + $0 - low) % MemoryLayout<Float>.alignment == 0
                    }
            } ?? false
        // A mapped page lost to a truncation reads as zeros and is noted; bytes past the end of a file cut
        // inside a page read as zeros without a fault, so the size is checked too.
        let changed = { mapped != nil && (mapped!.faulted || (raw.currentSize().map { $0 < high } ?? false)) }
        do {
            Workers.run(workerCount) { worker, _ in
                let bytes = UnsafeMutableRawBufferPointer.allocate(
                    byteCount: mapped == nil ? rowsPerBlock * k * size : 0,
                    alignment: MemoryLayout<Float>.alignment)
                defer { bytes.deallocate() }
                var values = [Float](repeating: 0, count: inPlace ? 0 : rowsPerBlock * k)
                var statistics: [RowStatistics]? = rowStatistics ? [] : nil
                counter.forEach(worker: worker) { b in
                    let r0 = b * rowsPerBlock, n = min(rowsPerBlock, q - r0), count = n * k
                    for h in heads {
                        let at = bases[h - heads.lowerBound] + r0 * k * size
                        let source: UnsafeRawPointer
                        if let mapped {
                            source = mapped.bytes.baseAddress! + (at - low)
                        } else {
                            let target = UnsafeMutableRawBufferPointer(rebasing: bytes[0..<(count * size)])
                            try raw.read(at: at, into: target, dataset: dataset)
                            source = UnsafeRawPointer(target.baseAddress!)
                        }
                        if inPlace {
                            try body(
                                RowBlock(worker: worker, head: h, rows: r0..<(r0 + n)),
                                UnsafeBufferPointer(start: source.assumingMemoryBound(to: Float.self), count: count))
                        } else {
                            try values.withUnsafeMutableBufferPointer { v in
                                let measured = ElementDecoding.decodeRows(
                                    UnsafeRawBufferPointer(start: source, count: count * size),
                                    type: type, order: order, rows: n, keys: k, into: v, statistics: &statistics)
                                try body(
                                    RowBlock(
                                        worker: worker, head: h, rows: r0..<(r0 + n),
                                        statistics: measured ? statistics : nil),
                                    UnsafeBufferPointer(rebasing: v[0..<count]))
                            }
                        }
                    }
                }
            }
            try counter.check()
        } catch {
            // Zeros read in place of lost pages can make the analysis fail first; the file is the cause.
            throw changed() ? changedWhileRead() : error
        }
        if changed() { throw changedWhileRead() }
    }

    /// The largest span of a layer's heads that is mapped rather than read: one layer at a time stays
    /// in memory either way (mapped pages count in the resident size until they are unmapped).
    private static let mapLimit = 256 << 20
    /// False makes every contiguous read go through `pread` (for tests that compare the two paths).
    static let mapsFiles = Atomic<Bool>(true)

    private func changedWhileRead() -> AttnError {
        AttnError(
            file: file, dataset: dataset,
            "file changed while it was read: part of it is gone or cannot be read (was it truncated or rewritten?)")
    }

    private func visitChunked(
        _ raw: ReadOnlyFile, chunk: [Int], type: ElementType, order: ByteOrder, filters: [ChunkFilter],
        locate: @escaping ([Int]) throws -> ChunkLocation?,
        heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor
    ) throws {
        let q = queries, k = keys, size = type.size, rank = shape.count
        let rowsPerChunk = chunk[rank - 2], keysPerChunk = chunk[rank - 1]
        let headsPerChunk = headAxis.map { chunk[$0] } ?? 1
        // Heads that share chunks go to the same worker, so each chunk is inflated once.
        var groups: [[Int]] = []
        for h in heads {
            if let last = groups.last?.last, last / headsPerChunk == h / headsPerChunk {
                groups[groups.count - 1].append(h)
            } else {
                groups.append([h])
            }
        }
        var chunkStrides = [Int](repeating: 1, count: rank)
        for a in stride(from: rank - 2, through: 0, by: -1) { chunkStrides[a] = chunkStrides[a + 1] * chunk[a + 1] }
        let chunkElements = chunk.reduce(1, *)
        let counter = Workers.Counter(groups.count, workers: min(workers, groups.count))
        try Workers.run(min(workers, groups.count)) { worker, _ in
            let inflater = try ChunkInflater(file: file, dataset: dataset)
            var chunkBytes = [UInt8](repeating: 0, count: chunkElements * size)
            var scratch = [UInt8](repeating: 0, count: filters.contains(.shuffle) ? chunkElements * size : 0)
            var compressed: [UInt8] = []
            var groupBytes = [UInt8](repeating: 0, count: headsPerChunk * rowsPerChunk * k * size)
            var values = [Float](repeating: 0, count: rowsPerChunk * k)
            var statistics: [RowStatistics]? = rowStatistics ? [] : nil
            counter.forEach(worker: worker) { g in
                let group = groups[g]
                for q0 in stride(from: 0, to: q, by: rowsPerChunk) {
                    let rows = min(rowsPerChunk, q - q0)
                    for k0 in stride(from: 0, to: k, by: keysPerChunk) {
                        let width = min(keysPerChunk, k - k0)
                        let first = leading(group[0]) + [q0, k0]
                        let origin = first.enumerated().map { axis, c in c - c % chunk[axis] }
                        try loadChunk(
                            at: origin, from: raw, locate: locate, filters: filters, type: type, inflater: inflater,
                            into: &chunkBytes, scratch: &scratch, compressed: &compressed)
                        // Scatter the rows of each head of the group into groupBytes[head, row, key].
                        for (slot, h) in group.enumerated() {
                            let at = leading(h) + [q0, k0]
                            var local = 0
                            for a in 0..<rank { local += (at[a] - origin[a]) * chunkStrides[a] }
                            chunkBytes.withUnsafeBytes { src in
                                groupBytes.withUnsafeMutableBytes { dst in
                                    for r in 0..<rows {
                                        let from = (local + r * chunkStrides[rank - 2]) * size
                                        let to = ((slot * rowsPerChunk + r) * k + k0) * size
                                        dst.baseAddress!.advanced(by: to).copyMemory(
                                            from: src.baseAddress!.advanced(by: from), byteCount: width * size)
                                    }
                                }
                            }
                        }
                    }
                    for (slot, h) in group.enumerated() {
                        let count = rows * k
                        let measured = groupBytes.withUnsafeBytes { src in
                            values.withUnsafeMutableBufferPointer { v in
                                ElementDecoding.decodeRows(
                                    UnsafeRawBufferPointer(rebasing: src[(slot * rowsPerChunk * k * size)...]),
                                    type: type, order: order, rows: rows, keys: k, into: v, statistics: &statistics)
                            }
                        }
                        try values.withUnsafeBufferPointer { v in
                            try body(
                                RowBlock(
                                    worker: worker, head: h, rows: q0..<(q0 + rows),
                                    statistics: measured ? statistics : nil),
                                UnsafeBufferPointer(rebasing: v[0..<count]))
                        }
                    }
                }
            }
        }
        try counter.check()
    }

    /// Reads the chunk whose first element is at `origin` and undoes its filters into `chunkBytes`.
    /// A chunk never written holds zeros (h5py's default fill value).
    private func loadChunk(
        at origin: [Int], from raw: ReadOnlyFile, locate: ([Int]) throws -> ChunkLocation?, filters: [ChunkFilter],
        type: ElementType, inflater: ChunkInflater, into chunkBytes: inout [UInt8], scratch: inout [UInt8],
        compressed: inout [UInt8]
    ) throws {
        guard let location = try locate(origin) else {
            chunkBytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
            return
        }
        let expected = chunkBytes.count
        guard location.size <= ChunkLocation.largestStored(chunkBytes: expected) else {
            throw corrupt(
                origin, "stored as \(location.size) bytes, more than a \(expected)-byte chunk can take compressed")
        }
        let applied = filters.enumerated().filter { index, _ in location.filterMask & (1 << UInt32(index)) == 0 }.map(
            \.element)
        if compressed.count < location.size { compressed = [UInt8](repeating: 0, count: location.size) }
        try compressed.withUnsafeMutableBytes { c in
            if let bytes = location.bytes {
                bytes.withUnsafeBytes { c.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<location.size])) }
            } else {
                try raw.read(
                    at: location.offset, into: UnsafeMutableRawBufferPointer(rebasing: c[0..<location.size]),
                    dataset: dataset)
            }
        }
        // Undo the filters last to first; `current` says which buffer holds the bytes so far.
        var current = 0  // 0: compressed, 1: chunkBytes, 2: scratch
        var length = location.size
        for filter in applied.reversed() {
            switch filter {
            case .deflate:
                guard current == 0 else { throw corrupt(origin, "deflate applied twice") }
                if let problem = inflater.inflate(compressed, count: length, into: &chunkBytes) {
                    throw corrupt(origin, problem)
                }
                current = 1
                length = expected
            case .shuffle:
                guard length == expected else { throw corrupt(origin, "\(length) bytes, expected \(expected)") }
                if current == 0 {
                    chunkBytes.withUnsafeMutableBytes { d in
                        compressed.withUnsafeBytes { s in
                            d.copyMemory(from: UnsafeRawBufferPointer(rebasing: s[0..<expected]))
                        }
                    }
                }
                // Shuffled: byte b of element e sits at b·n + e.
                let n = expected / type.size, width = type.size
                chunkBytes.withUnsafeBytes { s in
                    scratch.withUnsafeMutableBytes { d in
                        for b in 0..<width { for e in 0..<n { d[e * width + b] = s[b * n + e] } }
                    }
                }
                swap(&chunkBytes, &scratch)
                current = 1
            }
        }
        if current == 0 {
            guard length == expected else { throw corrupt(origin, "\(length) bytes stored, expected \(expected)") }
            chunkBytes.withUnsafeMutableBytes { d in
                compressed.withUnsafeBytes { s in d.copyMemory(from: UnsafeRawBufferPointer(rebasing: s[0..<expected]))
                }
            }
        }
    }

    private func corrupt(_ origin: [Int], _ what: String) -> AttnError {
        AttnError(file: file, dataset: dataset, "corrupt chunk at \(formatShape(origin)): \(what)")
    }
}

/// A zlib-stream decompressor for one worker. The corresponding C calls are
/// `libdeflate_alloc_decompressor`, `libdeflate_zlib_decompress` and `libdeflate_free_decompressor`.
final class ChunkInflater {
    private let decompressor: OpaquePointer

    init(file: String, dataset: String?) throws {
        guard let d = libdeflate_alloc_decompressor() else {
            throw AttnError(file: file, dataset: dataset, "cannot allocate a decompressor (out of memory)")
        }
        decompressor = d
    }

    deinit { libdeflate_free_decompressor(decompressor) }

    /// Inflates the zlib stream in `input[0..<count]` into all of `output`; nil on success, else what went wrong.
    func inflate(_ input: [UInt8], count: Int, into output: inout [UInt8]) -> String? {
        var produced = 0
        let status = input.withUnsafeBytes { i in
            output.withUnsafeMutableBytes { o in
                libdeflate_zlib_decompress(decompressor, i.baseAddress!, count, o.baseAddress!, o.count, &produced)
            }
        }
        switch status {
        case LIBDEFLATE_SUCCESS:
            return produced == output.count ? nil : "inflated to \(produced) bytes, expected \(output.count)"
        case LIBDEFLATE_SHORT_OUTPUT: return "inflated to fewer bytes than the \(output.count) expected"
        case LIBDEFLATE_INSUFFICIENT_SPACE: return "inflates to more than the \(output.count) bytes expected"
        default: return "not a valid zlib stream"
        }
    }
}
