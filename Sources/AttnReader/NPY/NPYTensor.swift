import AttnCore

/// A `.npy` array read lazily from a `ByteSource`: only the block asked for is read.
final class NPYTensor: StoredTensor {
    let info: TensorInfo
    let header: NPYHeader
    private let source: ByteSource
    private let file: String
    /// The name errors give (nil for a lone .npy file, whose file name says it all).
    private let errorDataset: String?
    var label: String? { errorDataset }

    /// Reads at most this many bytes at a time when gathering a Fortran-order block.
    private static let gatherChunkBytes = 8 << 20

    convenience init(name: String, source: ByteSource, file: String, errorDataset: String?) throws {
        let header = try NPYHeader.parse(file: file, dataset: errorDataset, length: source.length) { offset, count in
            var out = [UInt8](repeating: 0, count: count)
            try out.withUnsafeMutableBytes { try source.read(at: offset, into: $0) }
            return out
        }
        self.init(name: name, header: header, source: source, file: file, errorDataset: errorDataset)
    }

    init(name: String, header: NPYHeader, source: ByteSource, file: String, errorDataset: String?) {
        self.header = header
        self.source = source
        self.file = file
        self.errorDataset = errorDataset
        let element: TensorElement
        var notes: [String] = []
        switch header.element {
        case .floating(let t, let order):
            element = .floating(t)
            if order == .big { notes.append("big-endian") }
        case .unicode, .bytes: element = .text
        case .integer(_, _, _, let name): element = .unsupported(name)
        case .unsupported(let s): element = .unsupported(s)
        }
        if header.fortranOrder { notes.append("Fortran order") }
        notes.append("npy \(header.major).\(header.minor)")
        info = TensorInfo(name: name, shape: header.shape, element: element, storage: notes.joined(separator: ", "))
    }

    func readBlock(leading: [Int]) throws -> [Float] {
        guard case .floating(let type, let order) = header.element else {
            throw AttnError(.unsupported, file: file, dataset: errorDataset, unsupportedDtype(info.element))
        }
        let count = try blockCount(leading: leading, file: file)
        if count == 0 { return [] }
        let shape = header.shape
        if !header.fortranOrder || leading.isEmpty && shape.count <= 1 {
            var flat = 0
            for (axis, i) in leading.enumerated() { flat = flat * shape[axis] + i }
            let offset = header.dataOffset + flat * count * type.size
            // Neither buffer is cleared first (a layer of a small dump is read in less time than clearing it
            // takes); native float32 is read straight into the result.
            if type == .float32 && order == ByteOrder.native {
                return try [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    try source.read(at: offset, into: UnsafeMutableRawBufferPointer(out))
                    initialized = count
                }
            }
            let raw = try [UInt8](unsafeUninitializedCapacity: count * type.size) { bytes, initialized in
                try source.read(at: offset, into: UnsafeMutableRawBufferPointer(bytes))
                initialized = count * type.size
            }
            return raw.withUnsafeBytes { r in
                [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    ElementDecoding.decode(r, type: type, order: order, count: count, into: out)
                    initialized = count
                }
            }
        }
        var out = [Float](repeating: 0, count: count)
        // Fortran order: element (i0, ..., in) sits at Σ i_k · Π_{j<k} n_j. With the first m axes fixed,
        // the block is every P-th element from c, P = Π_{k<m} n_k, in Fortran order over the rest.
        var start = 0, step = 1
        for (axis, i) in leading.enumerated() {
            start += i * step
            step *= shape[axis]
        }
        var fortranBlock = [Float](repeating: 0, count: count)
        let itemSize = type.size
        let perChunk = max(1, Self.gatherChunkBytes / (step * itemSize))
        var raw = [UInt8](repeating: 0, count: ((perChunk - 1) * step + 1) * itemSize)
        var element = [UInt8](repeating: 0, count: itemSize)
        var t = 0
        while t < count {
            let n = min(perChunk, count - t)
            let span = ((n - 1) * step + 1) * itemSize
            let offset = header.dataOffset + (start + t * step) * itemSize
            try raw.withUnsafeMutableBytes {
                try source.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<span]))
            }
            fortranBlock.withUnsafeMutableBufferPointer { outBuf in
                for e in 0..<n {
                    let base = e * step * itemSize
                    for b in 0..<itemSize { element[b] = raw[base + b] }
                    element.withUnsafeBytes {
                        ElementDecoding.decode($0, type: type, order: order, count: 1, into: outBuf, at: t + e)
                    }
                }
            }
            t += n
        }
        // Fortran order over the remaining axes → row-major.
        let rest = Array(shape[leading.count...])
        var cStrides = [Int](repeating: 1, count: rest.count)
        for k in stride(from: rest.count - 2, through: 0, by: -1) { cStrides[k] = cStrides[k + 1] * rest[k + 1] }
        var index = [Int](repeating: 0, count: rest.count)
        var cIndex = 0
        for f in 0..<count {
            out[cIndex] = fortranBlock[f]
            // Advance the Fortran odometer: the first axis moves fastest.
            var k = 0
            while k < rest.count {
                index[k] += 1
                cIndex += cStrides[k]
                if index[k] < rest[k] { break }
                cIndex -= cStrides[k] * rest[k]
                index[k] = 0
                k += 1
            }
        }
        return out
    }

    /// A raw 2-byte void array (`|V2`, how numpy saves ml_dtypes' bfloat16) read as bfloat16.
    func reinterpreted(as type: ElementType) -> StoredTensor? {
        guard type == .bfloat16, header.itemSize == 2, header.descr.contains("V") else { return nil }
        return NPYTensor(
            name: info.name, header: header.with(element: .floating(.bfloat16, .little)), source: source,
            file: file, errorDataset: errorDataset)
    }

    var directStorage: DirectStorage? {
        // A lone .npy file; NPZ members go through their CRC-checking source instead.
        guard let region = source as? FileRegion, !header.fortranOrder,
            case .floating(let type, let order) = header.element
        else {
            return nil
        }
        return .contiguous(file: region.file, offset: region.base + header.dataOffset, type: type, order: order)
    }

    func readIntegers() throws -> [Int64] {
        guard case .integer(let size, let signed, let order, _) = header.element else {
            throw AttnError(file: file, dataset: errorDataset, "expected integers or booleans, found \(info.element)")
        }
        var raw = [UInt8](repeating: 0, count: header.dataLength)
        try raw.withUnsafeMutableBytes { try source.read(at: header.dataOffset, into: $0) }
        let values = IntegerDecoding.decode(raw, size: size, signed: signed, order: order)
        let shape = header.shape
        guard header.fortranOrder && shape.count >= 2 else { return values }
        // Fortran order: the first axis varies fastest; return C order.
        var out = values
        var index = [Int](repeating: 0, count: shape.count)
        for c in 0..<values.count {
            var f = 0, stride = 1
            for axis in 0..<shape.count { f += index[axis] * stride; stride *= shape[axis] }
            out[c] = values[f]
            var axis = shape.count - 1
            while axis >= 0 { index[axis] += 1; if index[axis] < shape[axis] { break }; index[axis] = 0; axis -= 1 }
        }
        return out
    }

    func readStrings() throws -> [String] {
        let count = header.shape.reduce(1, *)
        var raw = [UInt8](repeating: 0, count: header.dataLength)
        try raw.withUnsafeMutableBytes { try source.read(at: header.dataOffset, into: $0) }
        switch header.element {
        case .unicode(let n, let order):
            return (0..<count).map { i in
                var scalars = String.UnicodeScalarView()
                for c in 0..<n {
                    let o = (i * n + c) * 4
                    var v =
                        UInt32(raw[o]) | UInt32(raw[o + 1]) << 8 | UInt32(raw[o + 2]) << 16 | UInt32(raw[o + 3]) << 24
                    if order == .big { v = v.byteSwapped }
                    if v == 0 { break }
                    scalars.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                }
                return String(scalars)
            }
        case .bytes(let n):
            return (0..<count).map { i in
                let slice = raw[(i * n)..<((i + 1) * n)]
                return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
            }
        default:
            throw AttnError(
                file: file, dataset: errorDataset, "expected strings (numpy '<U' or '|S'), found \(info.element)")
        }
    }
}

/// A single `.npy` file: one tensor.
final class NPYContainer: TensorContainer {
    let file: String
    let formatName = "NPY"
    let tensors: [StoredTensor]
    let attributes: [Attribute] = []

    init(file: ReadOnlyFile) throws {
        self.file = file.path
        let stem = file.path.split(separator: "/").last.map(String.init) ?? file.path
        let name = stem.hasSuffix(".npy") ? String(stem.dropLast(4)) : stem
        let region = FileRegion(file: file, base: 0, length: file.size, dataset: nil)
        tensors = [try NPYTensor(name: name, source: region, file: file.path, errorDataset: nil)]
    }
}
