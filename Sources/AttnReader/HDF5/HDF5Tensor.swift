internal import CAttnHDF5
import AttnCore

/// One HDF5 dataset, read by hyperslab: `readBlock(leading:)` selects `[i0, ..., im, :, ..., :]`
/// and lets libhdf5 convert to native `float` (float16, float64 and big-endian included).
/// The corresponding C calls are `H5Sselect_hyperslab` and `H5Dread`.
final class HDF5Tensor: StoredTensor {
    let info: TensorInfo
    var label: String? { info.name }
    private let file: String
    private let dataset: HDF5Handle
    private let fileHandle: HDF5Handle  // keeps the file open while the dataset is used
    private let rawFile: ReadOnlyFile?
    /// For IEEE half floats: the byte order to decode raw bytes in. libhdf5's own half → float
    /// conversion is a slow software path, so these are read unconverted and decoded here.
    /// Elements read unconverted and decoded here: IEEE half floats (libhdf5's own half → float
    /// conversion is a slow software path), and raw 2-byte data read as bfloat16 on request.
    private var rawElement: (type: ElementType, order: ByteOrder)?
    private(set) var directStorage: DirectStorage?

    /// `other` with its 2-byte opaque or bitfield elements read as little-endian bfloat16.
    private init(bfloat16 other: HDF5Tensor) {
        file = other.file
        dataset = other.dataset
        fileHandle = other.fileHandle
        rawFile = other.rawFile
        rawElement = (.bfloat16, .little)
        info = TensorInfo(name: other.info.name, shape: other.info.shape, element: .floating(.bfloat16),
                          storage: [other.info.storage, "\(other.info.element) read as bfloat16"].compactMap { $0 }.joined(separator: ", "))
    }

    func reinterpreted(as type: ElementType) -> StoredTensor? {
        guard type == .bfloat16, case .unsupported(let kind) = info.element, kind == "opaque16" || kind == "bitfield16" else { return nil }
        return HDF5Tensor(bfloat16: self)
    }

    init(file: String, path: String, dataset: HDF5Handle, fileHandle: HDF5Handle, rawFile: ReadOnlyFile?, directChunks: Bool) throws {
        self.file = file
        self.dataset = dataset
        self.fileHandle = fileHandle
        self.rawFile = rawFile
        let space = HDF5Handle(try HDF5Library.check(H5Dget_space(dataset.id), file: file, dataset: path, "cannot read the dataspace"), .dataspace)
        let rank = Int(try HDF5Library.check(H5Sget_simple_extent_ndims(space.id), file: file, dataset: path, "cannot read the rank"))
        var dims = [hsize_t](repeating: 0, count: rank)
        var maxDims = [hsize_t](repeating: 0, count: rank)
        if rank > 0 { _ = H5Sget_simple_extent_dims(space.id, &dims, &maxDims) }
        let type = HDF5Handle(try HDF5Library.check(H5Dget_type(dataset.id), file: file, dataset: path, "cannot read the datatype"), .datatype)
        let size = H5Tget_size(type.id)
        let element: TensorElement
        switch H5Tget_class(type.id) {
        case H5T_FLOAT:
            switch size {
            case 2: element = .floating(.float16)
            case 4: element = .floating(.float32)
            case 8: element = .floating(.float64)
            default: element = .unsupported("float\(size * 8)")
            }
        case H5T_INTEGER:
            element = .unsupported((H5Tget_sign(type.id) == H5T_SGN_NONE ? "uint" : "int") + "\(size * 8)")
        case H5T_STRING: element = .text
        case H5T_COMPOUND:
            // numpy's complex64/complex128 as h5py writes them: two float members r and i.
            let isComplex = H5Tget_nmembers(type.id) == 2 && (0..<2).allSatisfy { H5Tget_member_class(type.id, UInt32($0)) == H5T_FLOAT }
            element = .unsupported(isComplex ? "complex\(size * 8)" : "compound")
        case H5T_OPAQUE: element = .unsupported("opaque\(size * 8)")
        case H5T_BITFIELD: element = .unsupported("bitfield\(size * 8)")
        case H5T_ENUM: element = .unsupported("enum")
        default: element = .unsupported("HDF5 type class \(H5Tget_class(type.id).rawValue)")
        }
        var notes: [String] = []
        if case .floating = element, H5Tget_order(type.id) == H5T_ORDER_BE { notes.append("big-endian") }
        // IEEE binary16/32/64 in either byte order can be decoded from raw bytes.
        var ieee: (type: ElementType, order: ByteOrder)?
        var sign = 0, exponentPosition = 0, exponentSize = 0, mantissaPosition = 0, mantissaSize = 0
        if case .floating(let t) = element, H5Tget_offset(type.id) == 0, H5Tget_precision(type.id) == size * 8,
           H5Tget_fields(type.id, &sign, &exponentPosition, &exponentSize, &mantissaPosition, &mantissaSize) >= 0 {
            let fields = [sign, exponentPosition, exponentSize, mantissaPosition, mantissaSize]
            let standard: [Int] = t == .float16 ? [15, 10, 5, 0, 10] : t == .float32 ? [31, 23, 8, 0, 23] : [63, 52, 11, 0, 52]
            let order = H5Tget_order(type.id)
            if fields == standard && (order == H5T_ORDER_LE || order == H5T_ORDER_BE) {
                ieee = (t, order == H5T_ORDER_BE ? .big : .little)
            }
        }
        rawElement = ieee?.type == .float16 ? ieee : nil
        let plist = HDF5Handle(H5Dget_create_plist(dataset.id), .propertyList)
        var direct: [ChunkFilter]? = []   // the filters, while direct reading stays possible
        var contiguous = false
        var chunkShape: [Int]?
        if plist.id >= 0 {
            if H5Pget_external_count(plist.id) != 0 { direct = nil }
            switch H5Pget_layout(plist.id) {
            case H5D_CHUNKED:
                var chunk = [hsize_t](repeating: 0, count: max(rank, 1))
                let n = H5Pget_chunk(plist.id, Int32(rank), &chunk)
                notes.append("chunked " + formatShape(chunk.prefix(Int(max(n, 0))).map { Int($0) }))
                // A chunk larger than a fixed-size dataset is never written by h5py (it refuses) and makes
                // libhdf5 1.10 read past its buffers: found by the mutation run (scripts/mutate_hdf5.py).
                if Int(n) == rank, let axis = (0..<rank).first(where: { chunk[$0] > dims[$0] && maxDims[$0] == dims[$0] }) {
                    throw DumpError(file: file, dataset: path, "chunk shape \(formatShape(chunk.map { Int(clamping: $0) })) exceeds the fixed shape \(formatShape(dims.map { Int(clamping: $0) })) on axis \(axis): the file is corrupt")
                }
                if Int(n) == rank { chunkShape = chunk.map { Int($0) } } else { direct = nil }
                // Chunks never written hold the fill value, and edge chunks may be stored unfiltered:
                // both are left to libhdf5 unless the fill is zero and every chunk is filtered.
                var options: UInt32 = 0
                if H5Pget_chunk_opts(plist.id, &options) < 0 || options & UInt32(H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS) != 0 { direct = nil }
                if !Self.fillIsZero(plist: plist.id, type: type.id, size: size) { direct = nil }
            case H5D_COMPACT: notes.append("compact")
            case H5D_CONTIGUOUS:
                notes.append("contiguous")
                contiguous = true
            default: break
            }
            let filters = H5Pget_nfilters(plist.id)
            for index in 0..<max(filters, 0) {
                var flags: UInt32 = 0
                var valueCount = 8
                var values = [UInt32](repeating: 0, count: 8)
                var nameBuffer = [CChar](repeating: 0, count: 64)
                var config: UInt32 = 0
                let filter = H5Pget_filter2(plist.id, UInt32(index), &flags, &valueCount, &values, nameBuffer.count, &nameBuffer, &config)
                switch filter {
                case H5Z_FILTER_DEFLATE:
                    notes.append(valueCount > 0 ? "gzip level \(values[0])" : "gzip")
                    direct?.append(.deflate)
                case H5Z_FILTER_SHUFFLE:
                    notes.append("shuffle")
                    direct?.append(.shuffle)
                case H5Z_FILTER_FLETCHER32:
                    notes.append("fletcher32")
                    direct = nil
                default:
                    direct = nil
                    let name = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    notes.append("filter \(filter)" + (name.isEmpty ? "" : " (\(name))"))
                }
            }
        }
        _ = HDF5Library.errorReason()
        // A corrupt file may claim any extent: refuse one whose element count overflows before using it.
        guard dims.allSatisfy({ $0 <= hsize_t(Int.max) }), MemoryBudget.bytes(dims.map { Int($0) }, elementSize: max(size, 1)) != nil else {
            throw DumpError(file: file, dataset: path, "claims shape (\(dims.map { String($0) }.joined(separator: ", "))), more bytes than any file can hold: the file is corrupt")
        }
        // Current extents beyond the maximum ones, or more data than the file could hold even compressed
        // (deflate cannot shrink data over 1032:1), mean a damaged header: refused before any allocation.
        if let axis = (0..<rank).first(where: { maxDims[$0] != hsize_t.max && dims[$0] > maxDims[$0] }) {
            throw DumpError(file: file, dataset: path, "extent \(dims[axis]) on axis \(axis) exceeds its maximum \(maxDims[axis]): the file is corrupt")
        }
        // Contiguous storage, once allocated, holds every element: a different size means damaged extents.
        // (Unallocated or chunked storage may legitimately be smaller: unwritten elements read as the fill value.)
        let stored = Int(clamping: H5Dget_storage_size(dataset.id))
        if contiguous, stored > 0, let claimed = MemoryBudget.bytes(dims.map { Int($0) }, elementSize: max(size, 1)), claimed > stored {
            throw DumpError(file: file, dataset: path, "claims shape (\(dims.map { String($0) }.joined(separator: ", "))), \(MemoryBudget.describe(claimed)), but stores \(MemoryBudget.describe(stored)): the file is corrupt")
        }
        info = TensorInfo(name: path, shape: dims.map { Int($0) }, element: element, storage: notes.joined(separator: ", "))
        if let rawFile, let ieee, let filters = direct, plist.id >= 0, !dims.contains(0) {
            directStorage = Self.direct(dataset: dataset, name: path, file: rawFile, plist: plist.id, chunk: chunkShape,
                                        addressesAreOffsets: directChunks, filters: filters, type: ieee.type, order: ieee.order, count: info.shape.reduce(1, *))
        }
    }

    /// Whether chunks never written read as zero bytes: no fill value defined, or one whose bytes are all 0.
    /// The corresponding C calls are `H5Pfill_value_defined` and `H5Pget_fill_value`.
    private static func fillIsZero(plist: hid_t, type: hid_t, size: Int) -> Bool {
        var status = H5D_FILL_VALUE_ERROR
        guard H5Pfill_value_defined(plist, &status) >= 0 else { return false }
        if status == H5D_FILL_VALUE_UNDEFINED || status == H5D_FILL_VALUE_DEFAULT { return true }
        var bytes = [UInt8](repeating: 0, count: max(size, 1))
        guard H5Pget_fill_value(plist, type, &bytes) >= 0 else { return false }
        return bytes.allSatisfy { $0 == 0 }
    }

    /// Where the bytes are, when `pread` can fetch them: contiguous storage that was allocated in
    /// full, or chunks passed through deflate and shuffle only. The corresponding C calls are
    /// `H5Dget_offset`, `H5Dget_storage_size` and `H5Dget_chunk_info_by_coord`.
    /// When chunk addresses are not file offsets (`addressesAreOffsets` false: after a user block), libhdf5
    /// fetches each chunk's stored bytes (`H5Dread_chunk`) and attninspect still undoes the filters itself,
    /// checking that each chunk inflates to exactly its size (libhdf5 1.10 does not, and reads past its buffer).
    private static func direct(dataset: HDF5Handle, name: String, file: ReadOnlyFile, plist: hid_t, chunk: [Int]?,
                               addressesAreOffsets: Bool, filters: [ChunkFilter],
                               type: ElementType, order: ByteOrder, count: Int) -> DirectStorage? {
        switch H5Pget_layout(plist) {
        case H5D_CONTIGUOUS:
            let offset = H5Dget_offset(dataset.id)
            guard offset != cattn_haddr_undef(), filters.isEmpty, Int(H5Dget_storage_size(dataset.id)) == count * type.size,
                  offset <= UInt64(Int.max) else { return nil }
            return .contiguous(file: file, offset: Int(offset), type: type, order: order)
        case H5D_CHUNKED:
            guard let chunk, let chunkBytes = MemoryBudget.bytes(chunk, elementSize: type.size) else { return nil }
            let path = file.path
            return .chunked(file: file, chunk: chunk, type: type, order: order, filters: filters) { coordinates in
                try HDF5Library.call {
                    var start = coordinates.map { hsize_t($0) }
                    var mask: UInt32 = 0
                    var address: haddr_t = 0
                    var size: hsize_t = 0
                    _ = try HDF5Library.check(H5Dget_chunk_info_by_coord(dataset.id, &start, &mask, &address, &size),
                                              file: path, dataset: name, "cannot locate the chunk at \(coordinates)")
                    if address == cattn_haddr_undef() { return nil }
                    guard address <= UInt64(Int.max), size <= UInt64(Int.max) else {
                        throw DumpError(file: path, dataset: name, "chunk at \(coordinates) has an impossible address")
                    }
                    if addressesAreOffsets { return ChunkLocation(offset: Int(address), size: Int(size), filterMask: mask) }
                    guard size <= UInt64(ChunkLocation.largestStored(chunkBytes: chunkBytes)) else {
                        throw DumpError(file: path, dataset: name, "chunk at \(coordinates) claims \(size) bytes, more than a \(chunkBytes)-byte chunk can take compressed: the file is corrupt")
                    }
                    var bytes = [UInt8](repeating: 0, count: Int(size))
                    var readMask: UInt32 = 0
                    _ = try HDF5Library.check(H5Dread_chunk(dataset.id, cattn_h5p_default(), &start, &readMask, &bytes),
                                              file: path, dataset: name, "cannot read the chunk at \(coordinates)")
                    return ChunkLocation(offset: 0, size: Int(size), filterMask: readMask, bytes: bytes)
                }
            }
        default:
            return nil
        }
    }

    func readBlock(leading: [Int]) throws -> [Float] {
        guard case .floating = info.element else {
            throw DumpError(file: file, dataset: name, unsupportedDtype(info.element))
        }
        let count = try blockCount(leading: leading, file: file)
        if count > 0, let storage = directStorage, let values = try readDirect(storage, leading: leading, count: count) {
            return values
        }
        var out = [Float](repeating: 0, count: count)
        if count == 0 { return out }
        try HDF5Library.call {
            let fileSpace = HDF5Handle(try HDF5Library.check(H5Dget_space(dataset.id), file: file, dataset: name, "cannot read the dataspace"), .dataspace)
            var memSpaceID = cattn_h5s_all()
            var memSpace: HDF5Handle?
            if !shape.isEmpty {
                var start = [hsize_t](repeating: 0, count: shape.count)
                var counts = shape.map { hsize_t($0) }
                for (axis, i) in leading.enumerated() {
                    start[axis] = hsize_t(i)
                    counts[axis] = 1
                }
                _ = try HDF5Library.check(H5Sselect_hyperslab(fileSpace.id, H5S_SELECT_SET, &start, nil, &counts, nil),
                                          file: file, dataset: name, "cannot select the block \(leading)")
                // The memory space has the selection's own shape: libhdf5 then copies whole rows,
                // where a flat 1-D space makes it walk the selection element by element.
                let space = HDF5Handle(try HDF5Library.check(H5Screate_simple(Int32(counts.count), &counts, nil), file: file, dataset: name, "cannot create a dataspace"), .dataspace)
                memSpace = space
                memSpaceID = space.id
            }
            let status: herr_t
            if let raw = rawElement {
                let fileType = HDF5Handle(try HDF5Library.check(H5Dget_type(dataset.id), file: file, dataset: name, "cannot read the datatype"), .datatype)
                var bytes = [UInt8](repeating: 0, count: count * raw.type.size)
                status = bytes.withUnsafeMutableBytes {
                    H5Dread(dataset.id, fileType.id, memSpaceID, fileSpace.id, cattn_h5p_default(), $0.baseAddress!)
                }
                if status >= 0 {
                    bytes.withUnsafeBytes { r in
                        out.withUnsafeMutableBufferPointer { ElementDecoding.decode(r, type: raw.type, order: raw.order, count: count, into: $0) }
                    }
                }
            } else {
                status = out.withUnsafeMutableBytes {
                    H5Dread(dataset.id, cattn_native_float(), memSpaceID, fileSpace.id, cattn_h5p_default(), $0.baseAddress!)
                }
            }
            _ = try HDF5Library.check(status, file: file, dataset: name, "cannot read \(leading.isEmpty ? "the data" : "block \(leading)")")
            withExtendedLifetime(memSpace) {}
        }
        return out
    }

    /// The block `[leading..., :, ..., :]` read by `DirectRows` (pread, chunks inflated and checked here, on all
    /// workers) rather than by `H5Dread`: libhdf5 1.10 reads past its buffer when a chunk inflates short of its
    /// size. nil when the block has no [query, key] matrices or its chunks are too large to hold per worker.
    private func readDirect(_ storage: DirectStorage, leading: [Int], count: Int) throws -> [Float]? {
        let rank = shape.count
        guard rank >= 2, leading.count <= rank - 2 else { return nil }
        // The axes between `leading` and [query, key]; a matrix index runs over them in C order.
        let middle = Array(shape[leading.count..<(rank - 2)])
        let matrices = middle.reduce(1, *)
        let coordinates: (Int) -> [Int] = { index in
            var rest = index
            var c = [Int](repeating: 0, count: middle.count)
            for axis in stride(from: middle.count - 1, through: 0, by: -1) {
                c[axis] = rest % middle[axis]
                rest /= middle[axis]
            }
            return leading + c
        }
        // Matrices that share a chunk are grouped by DirectRows only along one axis (heads): with more
        // middle axes, each matrix is read on its own.
        guard let rows = DirectRows(storage: storage, shape: shape, headAxis: middle.count == 1 ? leading.count : nil,
                                    file: file, dataset: name, leading: coordinates) else { return nil }
        let queries = shape[rank - 2], keys = shape[rank - 1]
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { target in
            let base = target.baseAddress!
            // Workers write disjoint rows of `out`.
            try rows.visit(heads: 0..<matrices, workers: Workers.count) { block, values in
                (base + (block.head * queries + block.rows.lowerBound) * keys).update(from: values.baseAddress!, count: values.count)
            }
        }
        return out
    }

    /// Integers are converted by libhdf5 to native int64; an enum (h5py's bool) is read unconverted
    /// and decoded from its base integer type. The corresponding C calls are `H5Dread` and `H5Tget_super`.
    func readIntegers() throws -> [Int64] {
        try HDF5Library.call {
            let type = HDF5Handle(try HDF5Library.check(H5Dget_type(dataset.id), file: file, dataset: name, "cannot read the datatype"), .datatype)
            let count = info.shape.reduce(1, *)
            switch H5Tget_class(type.id) {
            case H5T_INTEGER:
                var out = [Int64](repeating: 0, count: count)
                let status = out.withUnsafeMutableBytes { H5Dread(dataset.id, cattn_native_int64(), cattn_h5s_all(), cattn_h5s_all(), cattn_h5p_default(), $0.baseAddress) }
                guard status >= 0 else {
                    throw DumpError(file: file, dataset: name, "cannot read the integers" + (HDF5Library.errorReason().map { " (\($0))" } ?? ""))
                }
                return out
            case H5T_ENUM:
                let base = HDF5Handle(try HDF5Library.check(H5Tget_super(type.id), file: file, dataset: name, "cannot read the enum's base type"), .datatype)
                let size = H5Tget_size(base.id)
                guard [1, 2, 4, 8].contains(size), H5Tget_size(type.id) == size else {
                    throw DumpError(file: file, dataset: name, "expected integers or booleans, found an enum of \(size)-byte values")
                }
                var raw = [UInt8](repeating: 0, count: count * size)
                let status = raw.withUnsafeMutableBytes { H5Dread(dataset.id, type.id, cattn_h5s_all(), cattn_h5s_all(), cattn_h5p_default(), $0.baseAddress) }
                guard status >= 0 else {
                    throw DumpError(file: file, dataset: name, "cannot read the values" + (HDF5Library.errorReason().map { " (\($0))" } ?? ""))
                }
                let order: ByteOrder = H5Tget_order(base.id) == H5T_ORDER_BE ? .big : .little
                return IntegerDecoding.decode(raw, size: size, signed: H5Tget_sign(base.id) != H5T_SGN_NONE, order: order)
            default:
                throw DumpError(file: file, dataset: name, "expected integers or booleans, found \(info.element)")
            }
        }
    }

    func readStrings() throws -> [String] {
        guard case .text = info.element else {
            throw DumpError(file: file, dataset: name, "expected strings, found \(info.element)")
        }
        return try HDF5Library.call {
            let type = HDF5Handle(try HDF5Library.check(H5Dget_type(dataset.id), file: file, dataset: name, "cannot read the datatype"), .datatype)
            let space = HDF5Handle(try HDF5Library.check(H5Dget_space(dataset.id), file: file, dataset: name, "cannot read the dataspace"), .dataspace)
            let count = Int(H5Sget_simple_extent_npoints(space.id))
            if H5Tis_variable_str(type.id) > 0 {
                // Checked first for a precise message, then read in a child process: other layouts and other
                // corruptions of the heap can still crash libhdf5 or make it loop.
                if let rawFile {
                    try GlobalHeapCheck.check(dataset: dataset.id, count: count, file: fileHandle.id, raw: rawFile, path: file, name: name)
                }
                switch HDF5Strings.readVariableIsolated(dataset.id, isDataset: true, fileType: type.id, count: count, file: file) {
                case .success(let strings): return strings
                case .failure(.corruptHeap):
                    throw DumpError(file: file, dataset: name, "cannot read the strings: their global heap is corrupt (libhdf5 crashed or hung reading it)")
                case .failure(.unreadable):
                    throw DumpError(file: file, dataset: name, "cannot read the strings" + (HDF5Library.errorReason().map { " (\($0))" } ?? ""))
                }
            }
            guard let strings = HDF5Strings.read(type: type.id, count: count, space: space.id, read: { memType, buffer in
                H5Dread(dataset.id, memType, cattn_h5s_all(), cattn_h5s_all(), cattn_h5p_default(), buffer)
            }) else {
                throw DumpError(file: file, dataset: name, "cannot read the strings" + (HDF5Library.errorReason().map { " (\($0))" } ?? ""))
            }
            return strings
        }
    }
}
