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
    /// Why the data is not read, found when the dataset was opened (its data lives in another file, it needs a
    /// filter libhdf5 lacks, or it was never written): `info` lists the dataset, and every read throws this.
    private var refusal: (kind: AttnError.Kind, reason: String)?

    /// `other` with its 2-byte opaque or bitfield elements read as little-endian bfloat16.
    private init(bfloat16 other: HDF5Tensor) {
        file = other.file
        dataset = other.dataset
        fileHandle = other.fileHandle
        rawFile = other.rawFile
        rawElement = (.bfloat16, .little)
        refusal = other.refusal
        info = TensorInfo(
            name: other.info.name, shape: other.info.shape, element: .floating(.bfloat16),
            storage: [other.info.storage, "\(other.info.element) read as bfloat16"].compactMap { $0 }.joined(
                separator: ", "))
    }

    func reinterpreted(as type: ElementType) -> StoredTensor? {
        guard type == .bfloat16, case .unsupported(let kind) = info.element, kind == "opaque16" || kind == "bitfield16"
        else { return nil }
        return HDF5Tensor(bfloat16: self)
    }

    init(
        file: String, path: String, dataset: HDF5Handle, fileHandle: HDF5Handle, rawFile: ReadOnlyFile?,
        directChunks: Bool
    ) throws {
        self.file = file
        self.dataset = dataset
        self.fileHandle = fileHandle
        self.rawFile = rawFile
        // nil when libhdf5 cannot give the creation properties: the dataset is then read without them (as contiguous).
        let plist = HDF5Handle(H5Dget_create_plist(dataset.id), .propertyList)
        // The extent of a virtual dataset with an unlimited mapping is found by opening its sources (`H5Dget_space`
        // does): it is taken from its own first mapping instead, so that no other file is ever opened.
        let isVirtual = plist.map { H5Pget_layout($0.id) == H5D_VIRTUAL } ?? false
        let space = try HDF5Handle(
            checking: isVirtual ? cattn_virtual_space(plist!.id) : H5Dget_space(dataset.id), .dataspace,
            file: file, dataset: path, "cannot read the dataspace")
        let rank = Int(
            try HDF5Library.check(
                H5Sget_simple_extent_ndims(space.id), file: file, dataset: path, "cannot read the rank"))
        var dims = [hsize_t](repeating: 0, count: rank)
        var maxDims = [hsize_t](repeating: 0, count: rank)
        if rank > 0 { _ = H5Sget_simple_extent_dims(space.id, &dims, &maxDims) }
        let type = try HDF5Handle(
            checking: H5Dget_type(dataset.id), .datatype, file: file, dataset: path, "cannot read the datatype")
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
            let isComplex =
                H5Tget_nmembers(type.id) == 2
                && (0..<2).allSatisfy { H5Tget_member_class(type.id, UInt32($0)) == H5T_FLOAT }
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
            H5Tget_fields(type.id, &sign, &exponentPosition, &exponentSize, &mantissaPosition, &mantissaSize) >= 0
        {
            let fields = [sign, exponentPosition, exponentSize, mantissaPosition, mantissaSize]
            let standard: [Int] =
                t == .float16 ? [15, 10, 5, 0, 10] : t == .float32 ? [31, 23, 8, 0, 23] : [63, 52, 11, 0, 52]
            let order = H5Tget_order(type.id)
            if fields == standard && (order == H5T_ORDER_LE || order == H5T_ORDER_BE) {
                ieee = (t, order == H5T_ORDER_BE ? .big : .little)
            }
        }
        rawElement = ieee?.type == .float16 ? ieee : nil
        var direct: [ChunkFilter]? = []  // the filters, while direct reading stays possible
        var contiguous = false
        var chunkShape: [Int]?
        var layout = H5D_LAYOUT_ERROR
        if let plist {
            if let external = Self.externalFiles(plist: plist.id) {
                direct = nil
                notes.append("external raw storage in " + external)
                refusal = (
                    .unsupported,
                    """
                    stores its data in another file (HDF5 external storage: \(external)); attninspect reads only \
                    the file it was given
                    """
                )
            }
            layout = H5Pget_layout(plist.id)
            switch layout {
            case H5D_CHUNKED:
                var chunk = [hsize_t](repeating: 0, count: max(rank, 1))
                let n = H5Pget_chunk(plist.id, Int32(rank), &chunk)
                notes.append("chunked " + formatShape(chunk.prefix(Int(max(n, 0))).map { Int($0) }))
                // A chunk larger than a fixed-size dataset is never written by h5py (it refuses) and makes
                // libhdf5 1.10 read past its buffers: found by the mutation run (scripts/mutate_hdf5.py).
                if Int(n) == rank,
                    let axis = (0..<rank).first(where: { chunk[$0] > dims[$0] && maxDims[$0] == dims[$0] })
                {
                    throw AttnError(
                        file: file, dataset: path,
                        """
                        chunk shape \(formatShape(chunk.map { Int(clamping: $0) })) exceeds the fixed shape \
                        \(formatShape(dims.map { Int(clamping: $0) })) on axis \(axis): the file is corrupt
                        """
                    )
                }
                if Int(n) == rank { chunkShape = chunk.map { Int($0) } } else { direct = nil }
                // Chunks never written hold the fill value, and edge chunks may be stored unfiltered:
                // both are left to libhdf5 unless the fill is zero and every chunk is filtered.
                var options: UInt32 = 0
                if H5Pget_chunk_opts(plist.id, &options) < 0
                    || options & UInt32(H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS) != 0
                {
                    direct = nil
                }
                if !Self.fillIsZero(plist: plist.id, type: type.id, size: size) { direct = nil }
            case H5D_COMPACT: notes.append("compact")
            case H5D_CONTIGUOUS:
                if refusal == nil { notes.append("contiguous") }
                contiguous = true
            case H5D_VIRTUAL:
                let sources = Self.virtualSources(plist: plist.id)
                notes.append("virtual, mapped from " + sources)
                refusal = (
                    .unsupported,
                    """
                    is a virtual dataset whose data is read from \(sources); attninspect reads only the file it \
                    was given
                    """
                )
                direct = nil
            default: break
            }
            let filters = H5Pget_nfilters(plist.id)
            for index in 0..<max(filters, 0) {
                var flags: UInt32 = 0
                var valueCount = 8
                var values = [UInt32](repeating: 0, count: 8)
                var nameBuffer = [CChar](repeating: 0, count: 64)
                var config: UInt32 = 0
                let filter = H5Pget_filter2(
                    plist.id, UInt32(index), &flags, &valueCount, &values, nameBuffer.count, &nameBuffer, &config)
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
                    let stored = String(
                        decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    let name = HDF5Filters.knownNames[Int(filter)] ?? (stored.isEmpty ? nil : stored)
                    let described = "filter \(filter)" + (name.map { " (\($0))" } ?? "")
                    // Plugin loading is off (`HDF5Library`): a filter libhdf5 was not built with is never loaded.
                    if H5Zfilter_avail(filter) > 0 {
                        notes.append(described)
                    } else {
                        notes.append(described + ", not available")
                        if refusal == nil {
                            refusal = (
                                .unsupported,
                                """
                                uses \(described), which attninspect does not read (it reads \
                                \(HDF5Filters.available)); rewrite it without that filter, e.g. h5repack -f NONE \
                                or -f GZIP=4
                                """
                            )
                        }
                    }
                }
            }
        }
        _ = HDF5Library.errorReason()
        // A corrupt file may claim any extent: refuse one whose element count overflows before using it.
        guard dims.allSatisfy({ $0 <= hsize_t(Int.max) }),
            MemoryBudget.bytes(dims.map { Int($0) }, elementSize: max(size, 1)) != nil
        else {
            throw AttnError(
                file: file, dataset: path,
                """
                claims shape (\(dims.map { String($0) }.joined(separator: ", "))), more bytes than any file can \
                hold: the file is corrupt
                """
            )
        }
        // Current extents beyond the maximum ones, or more data than the file could hold even compressed
        // (deflate cannot shrink data over 1032:1), mean a damaged header: refused before any allocation.
        if let axis = (0..<rank).first(where: { maxDims[$0] != hsize_t.max && dims[$0] > maxDims[$0] }) {
            throw AttnError(
                file: file, dataset: path,
                "extent \(dims[axis]) on axis \(axis) exceeds its maximum \(maxDims[axis]): the file is corrupt")
        }
        // Contiguous storage, once allocated, holds every element: a different size means damaged extents.
        // (Unallocated or chunked storage may legitimately be smaller: unwritten elements read as the fill value.)
        let stored = isVirtual ? 0 : Int(clamping: H5Dget_storage_size(dataset.id))
        let claimed = MemoryBudget.bytes(dims.map { Int($0) }, elementSize: max(size, 1)) ?? Int.max
        if contiguous, refusal == nil, stored > 0, claimed > stored {
            throw AttnError(
                file: file, dataset: path,
                """
                claims shape (\(dims.map { String($0) }.joined(separator: ", "))), \
                \(MemoryBudget.describe(claimed)), but stores \(MemoryBudget.describe(stored)): the file is corrupt
                """
            )
        }
        // Data never written reads as the fill value: a tiny file could claim terabytes of it, and an export
        // interrupted half-way would read as rows of zeros. Attention dumps are written whole, so a dataset
        // whose storage was never allocated, or whose chunks were not all written, is refused before any read.
        var chunkCount: hsize_t = 0
        if refusal == nil, claimed > 0 {
            let shape = "(\(dims.map { String($0) }.joined(separator: ", ")))"
            if layout == H5D_CHUNKED, let chunk = chunkShape {
                var written: hsize_t = 0
                defer { chunkCount = written }
                let total = zip(dims, chunk).reduce(1.0) { $0 * (Double($1.0) / Double(max($1.1, 1))).rounded(.up) }
                if withExtendedLifetime(space, { H5Dget_num_chunks(dataset.id, space.id, &written) }) < 0 {
                    refusal = (
                        .input, "cannot count its chunks (\(HDF5Library.errorReason() ?? "")): the file is corrupt"
                    )
                } else if Double(written) < total {
                    notes.append("\(written) of \(formatCount(total)) chunks written")
                    refusal = (
                        .input,
                        """
                        claims shape \(shape) (\(MemoryBudget.describe(claimed))) in \(formatCount(total)) \
                        chunks, but only \(written) \(written == 1 ? "was" : "were") ever written (the rest would \
                        read as the fill value): the export was interrupted or the file is damaged
                        """
                    )
                }
            } else if (layout == H5D_CONTIGUOUS || layout == H5D_COMPACT) && stored == 0 {
                notes.append("never written")
                refusal = (
                    .input,
                    """
                    claims shape \(shape) (\(MemoryBudget.describe(claimed))), but its data was never written (it \
                    would read as the fill value): the export was interrupted or the file is damaged
                    """
                )
            }
        }
        info = TensorInfo(
            name: path, shape: dims.map { Int($0) }, element: element, storage: notes.joined(separator: ", "))
        if refusal == nil, let rawFile, let ieee, let filters = direct, let plist, !dims.contains(0) {
            directStorage = Self.direct(
                dataset: dataset, name: path, file: rawFile, plist: plist.id, chunk: chunkShape,
                addressesAreOffsets: directChunks && chunkCount <= Self.chunksLocatedByCoordinate, filters: filters,
                type: ieee.type, order: ieee.order, count: info.shape.reduce(1, *))
        }
    }

    /// The files an externally stored dataset's bytes are in (`'/etc/passwd' (offset 0, unlimited)`), or nil when
    /// the dataset is not stored externally. The corresponding C calls are `H5Pget_external_count` and
    /// `H5Pget_external`.
    private static func externalFiles(plist: hid_t) -> String? {
        let count = H5Pget_external_count(plist)
        guard count != 0 else { return nil }
        guard count > 0 else { _ = HDF5Library.errorReason(); return "(unreadable list of files)" }
        var names: [String] = []
        for index in 0..<min(Int(count), 3) {
            var buffer = [CChar](repeating: 0, count: 4097)
            var offset: off_t = 0
            var size: hsize_t = 0
            guard H5Pget_external(plist, UInt32(index), buffer.count - 1, &buffer, &offset, &size) >= 0 else {
                _ = HDF5Library.errorReason()
                names.append("(unreadable)")
                continue
            }
            let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            names.append("'\(name)' (offset \(offset), \(size == hsize_t.max ? "unlimited" : "\(size) bytes"))")
        }
        return names.joined(separator: ", ") + (count > 3 ? " and \(count - 3) more" : "")
    }

    /// Where a virtual dataset's mappings read from (`'other.h5' dataset '/attentions'`). The corresponding C calls
    /// are `H5Pget_virtual_count`, `H5Pget_virtual_filename` and `H5Pget_virtual_dsetname`.
    private static func virtualSources(plist: hid_t) -> String {
        var count = 0
        guard H5Pget_virtual_count(plist, &count) >= 0 else {
            _ = HDF5Library.errorReason(); return "other datasets (unreadable mappings)"
        }
        func text(_ get: (UnsafeMutablePointer<CChar>?, Int) -> Int) -> String {
            let size = get(nil, 0)
            guard size >= 0 else { _ = HDF5Library.errorReason(); return "(unreadable)" }
            var buffer = [CChar](repeating: 0, count: min(size, 4096) + 1)
            _ = get(&buffer, buffer.count)
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        var sources: [String] = []
        for index in 0..<min(count, 3) {
            let fileName = text { H5Pget_virtual_filename(plist, index, $0, $1) }
            let datasetName = text { H5Pget_virtual_dsetname(plist, index, $0, $1) }
            sources.append((fileName == "." ? "this file" : "'\(fileName)'") + " dataset '\(datasetName)'")
        }
        if sources.isEmpty { return "no source (no mappings)" }
        return sources.joined(separator: ", ") + (count > 3 ? " and \(count - 3) more" : "")
    }

    /// libhdf5 1.10 finds a chunk's address (`H5Dget_chunk_info_by_coord`) by walking every chunk of the dataset, so
    /// locating each chunk that way takes time growing with the square of their number (131,072 one-element chunks,
    /// a 9 MB file, took 5 minutes). Datasets with more chunks than this have each chunk fetched by coordinate
    /// through the index instead (`H5Dread_chunk`, a B-tree lookup), at the cost of holding libhdf5's lock while it
    /// reads.
    static let chunksLocatedByCoordinate: hsize_t = 1024

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
    private static func direct(
        dataset: HDF5Handle, name: String, file: ReadOnlyFile, plist: hid_t, chunk: [Int]?,
        addressesAreOffsets: Bool, filters: [ChunkFilter],
        type: ElementType, order: ByteOrder, count: Int
    ) -> DirectStorage? {
        switch H5Pget_layout(plist) {
        case H5D_CONTIGUOUS:
            let offset = H5Dget_offset(dataset.id)
            guard offset != cattn_haddr_undef(), filters.isEmpty,
                Int(H5Dget_storage_size(dataset.id)) == count * type.size,
                offset <= UInt64(Int.max)
            else { return nil }
            return .contiguous(file: file, offset: Int(offset), type: type, order: order)
        case H5D_CHUNKED:
            guard let chunk, let chunkBytes = MemoryBudget.bytes(chunk, elementSize: type.size) else { return nil }
            let path = file.path
            return .chunked(file: file, chunk: chunk, type: type, order: order, filters: filters) { coordinates in
                try HDF5Library.call {
                    var start = coordinates.map { hsize_t($0) }
                    var size: hsize_t = 0
                    if addressesAreOffsets {
                        var mask: UInt32 = 0
                        var address: haddr_t = 0
                        _ = try HDF5Library.check(
                            H5Dget_chunk_info_by_coord(dataset.id, &start, &mask, &address, &size),
                            file: path, dataset: name, "cannot locate the chunk at \(coordinates)")
                        if address == cattn_haddr_undef() { return nil }
                        guard address <= UInt64(Int.max), size <= UInt64(Int.max) else {
                            throw AttnError(
                                file: path, dataset: name, "chunk at \(coordinates) has an impossible address")
                        }
                        return ChunkLocation(offset: Int(address), size: Int(size), filterMask: mask)
                    }
                    // Looked up through the chunk index (a B-tree search), then read by libhdf5.
                    _ = try HDF5Library.check(
                        H5Dget_chunk_storage_size(dataset.id, &start, &size),
                        file: path, dataset: name, "cannot locate the chunk at \(coordinates)")
                    if size == 0 { return nil }
                    guard size <= UInt64(ChunkLocation.largestStored(chunkBytes: chunkBytes)) else {
                        throw AttnError(
                            file: path, dataset: name,
                            """
                            chunk at \(coordinates) claims \(size) bytes, more than a \(chunkBytes)-byte chunk \
                            can take compressed: the file is corrupt
                            """
                        )
                    }
                    var bytes = [UInt8](repeating: 0, count: Int(size))
                    var readMask: UInt32 = 0
                    _ = try HDF5Library.check(
                        H5Dread_chunk(dataset.id, cattn_h5p_default(), &start, &readMask, &bytes),
                        file: path, dataset: name, "cannot read the chunk at \(coordinates)")
                    return ChunkLocation(offset: 0, size: Int(size), filterMask: readMask, bytes: bytes)
                }
            }
        default:
            return nil
        }
    }

    var unreadable: (kind: AttnError.Kind, reason: String)? { refusal }

    /// Throws the reason this dataset's data is not read, if there is one.
    private func checkReadable() throws {
        if let refusal { throw AttnError(refusal.kind, file: file, dataset: name, refusal.reason) }
    }

    func readBlock(leading: [Int]) throws -> [Float] {
        try checkReadable()
        guard case .floating = info.element else {
            throw AttnError(.unsupported, file: file, dataset: name, unsupportedDtype(info.element))
        }
        let count = try blockCount(leading: leading, file: file)
        if count > 0, let storage = directStorage, let values = try readDirect(storage, leading: leading, count: count)
        {
            return values
        }
        var out = [Float](repeating: 0, count: count)
        if count == 0 { return out }
        try HDF5Library.call {
            let fileSpace = try HDF5Handle(
                checking: H5Dget_space(dataset.id), .dataspace, file: file, dataset: name, "cannot read the dataspace")
            var memSpaceID = cattn_h5s_all()
            var memSpace: HDF5Handle?
            if !shape.isEmpty {
                var start = [hsize_t](repeating: 0, count: shape.count)
                var counts = shape.map { hsize_t($0) }
                for (axis, i) in leading.enumerated() {
                    start[axis] = hsize_t(i)
                    counts[axis] = 1
                }
                _ = try HDF5Library.check(
                    H5Sselect_hyperslab(fileSpace.id, H5S_SELECT_SET, &start, nil, &counts, nil),
                    file: file, dataset: name, "cannot select the block \(leading)")
                // The memory space has the selection's own shape: libhdf5 then copies whole rows,
                // where a flat 1-D space makes it walk the selection element by element.
                let space = try HDF5Handle(
                    checking: H5Screate_simple(Int32(counts.count), &counts, nil), .dataspace, file: file,
                    dataset: name, "cannot create a dataspace")
                memSpace = space
                memSpaceID = space.id
            }
            let status: herr_t
            if let raw = rawElement {
                let fileType = try HDF5Handle(
                    checking: H5Dget_type(dataset.id), .datatype, file: file, dataset: name, "cannot read the datatype")
                var bytes = [UInt8](repeating: 0, count: count * raw.type.size)
                status = bytes.withUnsafeMutableBytes {
                    H5Dread(dataset.id, fileType.id, memSpaceID, fileSpace.id, cattn_h5p_default(), $0.baseAddress!)
                }
                if status >= 0 {
                    bytes.withUnsafeBytes { r in
                        out.withUnsafeMutableBufferPointer {
                            ElementDecoding.decode(r, type: raw.type, order: raw.order, count: count, into: $0)
                        }
                    }
                }
            } else {
                status = out.withUnsafeMutableBytes {
                    H5Dread(
                        dataset.id, cattn_native_float(), memSpaceID, fileSpace.id, cattn_h5p_default(), $0.baseAddress!
                    )
                }
            }
            _ = try HDF5Library.check(
                status, file: file, dataset: name, "cannot read \(leading.isEmpty ? "the data" : "block \(leading)")")
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
        guard
            let rows = DirectRows(
                storage: storage, shape: shape, headAxis: middle.count == 1 ? leading.count : nil,
                file: file, dataset: name, leading: coordinates)
        else { return nil }
        let queries = shape[rank - 2], keys = shape[rank - 1]
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { target in
            let base = target.baseAddress!
            // Workers write disjoint rows of `out`.
            try rows.visit(heads: 0..<matrices, workers: Workers.count, rowStatistics: false) { block, values in
                (base + (block.head * queries + block.rows.lowerBound) * keys).update(
                    from: values.baseAddress!, count: values.count)
            }
        }
        return out
    }

    /// Integers are converted by libhdf5 to native int64; an enum (h5py's bool) is read unconverted
    /// and decoded from its base integer type. The corresponding C calls are `H5Dread` and `H5Tget_super`.
    func readIntegers() throws -> [Int64] {
        try checkReadable()
        return try HDF5Library.call {
            let type = try HDF5Handle(
                checking: H5Dget_type(dataset.id), .datatype, file: file, dataset: name, "cannot read the datatype")
            let count = info.shape.reduce(1, *)
            switch H5Tget_class(type.id) {
            case H5T_INTEGER:
                var out = [Int64](repeating: 0, count: count)
                let status = out.withUnsafeMutableBytes {
                    H5Dread(
                        dataset.id, cattn_native_int64(), cattn_h5s_all(), cattn_h5s_all(), cattn_h5p_default(),
                        $0.baseAddress)
                }
                guard status >= 0 else {
                    throw AttnError(
                        file: file, dataset: name,
                        "cannot read the integers" + (HDF5Library.errorReason().map { " (\($0))" } ?? ""))
                }
                return out
            case H5T_ENUM:
                let base = try HDF5Handle(
                    checking: H5Tget_super(type.id), .datatype, file: file, dataset: name,
                    "cannot read the enum's base type")
                let size = H5Tget_size(base.id)
                guard [1, 2, 4, 8].contains(size), H5Tget_size(type.id) == size else {
                    throw AttnError(
                        file: file, dataset: name, "expected integers or booleans, found an enum of \(size)-byte values"
                    )
                }
                var raw = [UInt8](repeating: 0, count: count * size)
                let status = raw.withUnsafeMutableBytes {
                    H5Dread(dataset.id, type.id, cattn_h5s_all(), cattn_h5s_all(), cattn_h5p_default(), $0.baseAddress)
                }
                guard status >= 0 else {
                    throw AttnError(
                        file: file, dataset: name,
                        "cannot read the values" + (HDF5Library.errorReason().map { " (\($0))" } ?? ""))
                }
                let order: ByteOrder = H5Tget_order(base.id) == H5T_ORDER_BE ? .big : .little
                return IntegerDecoding.decode(
                    raw, size: size, signed: H5Tget_sign(base.id) != H5T_SGN_NONE, order: order)
            default:
                throw AttnError(file: file, dataset: name, "expected integers or booleans, found \(info.element)")
            }
        }
    }

    func readStrings() throws -> [String] {
        try checkReadable()
        guard case .text = info.element else {
            throw AttnError(file: file, dataset: name, "expected strings, found \(info.element)")
        }
        return try HDF5Library.call {
            let type = try HDF5Handle(
                checking: H5Dget_type(dataset.id), .datatype, file: file, dataset: name, "cannot read the datatype")
            let space = try HDF5Handle(
                checking: H5Dget_space(dataset.id), .dataspace, file: file, dataset: name, "cannot read the dataspace")
            let count = Int(H5Sget_simple_extent_npoints(space.id))
            if H5Tis_variable_str(type.id) > 0 {
                // Read in a child process: a corrupt global heap can crash libhdf5 or make it loop.
                switch withExtendedLifetime(
                    type,
                    { HDF5Strings.readVariableIsolated([(dataset.id, type.id, count)], isDataset: true, file: file)[0] }
                ) {
                case .success(let strings): return strings
                case .failure(.corruptHeap):
                    throw AttnError(
                        file: file, dataset: name,
                        "cannot read the strings: their global heap is corrupt (libhdf5 crashed or hung reading it)")
                case .failure(.unreadable):
                    throw AttnError(
                        file: file, dataset: name,
                        "cannot read the strings" + (HDF5Library.errorReason().map { " (\($0))" } ?? ""))
                case .failure(.tooLarge):
                    throw AttnError(
                        file: file, dataset: name,
                        """
                        its strings hold more than \(HDF5Strings.textLimit >> 20) MiB of text: not token labels \
                        attninspect reads
                        """
                    )
                }
            }
            guard
                let strings = HDF5Strings.read(
                    type: type.id, count: count, space: space.id,
                    read: { memType, buffer in
                        H5Dread(dataset.id, memType, cattn_h5s_all(), cattn_h5s_all(), cattn_h5p_default(), buffer)
                    })
            else {
                throw AttnError(
                    file: file, dataset: name,
                    "cannot read the strings" + (HDF5Library.errorReason().map { " (\($0))" } ?? ""))
            }
            return strings
        }
    }
}

/// A chunk count that may exceed `Int` (a corrupt extent): exact below 10^15, else in scientific notation.
private func formatCount(_ count: Double) -> String {
    count < 1e15 ? String(Int(count)) : "\(count)"
}

/// The HDF5 filters, by number: which libhdf5 applies here, and the names of common plugin filters for messages.
enum HDF5Filters {
    /// Filters registered by HDF5's filter registry for the plugins people meet in dumps (h5py's lzf, hdf5plugin's).
    static let knownNames: [Int: String] = [
        32000: "lzf", 32001: "blosc", 307: "bzip2", 32004: "lz4", 32008: "bitshuffle", 32013: "zfp",
        32015: "zstd", 32017: "sz", 32026: "blosc2", 32024: "sz3", 32018: "fcidecomp"
    ]

    /// The built-in filters this libhdf5 applies (deflate, shuffle and fletcher32 always; szip, nbit and
    /// scale-offset when it was built with them), for messages.
    static var available: String {
        HDF5Library.call {
            let builtIn: [(H5Z_filter_t, String)] = [
                (H5Z_FILTER_DEFLATE, "deflate (gzip)"), (H5Z_FILTER_SHUFFLE, "shuffle"),
                (H5Z_FILTER_FLETCHER32, "fletcher32"), (H5Z_FILTER_SZIP, "szip"),
                (H5Z_FILTER_NBIT, "nbit"), (H5Z_FILTER_SCALEOFFSET, "scale-offset")
            ]
            let names = builtIn.filter { H5Zfilter_avail($0.0) > 0 }.map(\.1)
            _ = HDF5Library.errorReason()
            return names.joined(separator: ", ")
        }
    }
}
