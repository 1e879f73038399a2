#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CAttnHDF5
import AttnCore

/// An HDF5 file opened read-only through libhdf5: every dataset is listed, root and dataset
/// attributes are read, and datasets are read by hyperslab, one block at a time.
final class HDF5Container: TensorContainer {
    let file: String
    let formatName = "HDF5"
    private(set) var tensors: [StoredTensor] = []
    private(set) var attributes: [Attribute] = []
    private let handle: HDF5Handle
    /// Groups already listed, by (file number, address): hard links may reach a group twice or loop.
    private var visitedGroups: Set<[UInt64]> = []
    /// Soft and external links that were not followed (listed by `info`).
    private(set) var skippedLinks: [String] = []
    /// The same file opened for `pread`, for datasets whose bytes can be read without libhdf5.
    private let rawFile: ReadOnlyFile?
    /// Whether chunk addresses can be used as file offsets: not after a user block, where libhdf5
    /// versions disagree on whether `H5Dget_chunk_info_by_coord` counts it.
    private var chunkAddressesAreOffsets = true

    init(path: String) throws {
        file = path
        rawFile = try? ReadOnlyFile(path: path)
        handle = try HDF5Library.call {
            let id = H5Fopen(path, cattn_h5f_acc_rdonly(), cattn_h5p_default())
            if id < 0 {
                let reason = HDF5Library.errorReason() ?? "libhdf5 could not open it"
                throw DumpError(file: path, "not a readable HDF5 file: \(reason)")
            }
            return HDF5Handle(id, .file)
        }
        try HDF5Library.call {
            let plist = HDF5Handle(H5Fget_create_plist(handle.id), .propertyList)
            var userBlock: hsize_t = 0
            if plist.id < 0 || H5Pget_userblock(plist.id, &userBlock) < 0 || userBlock != 0 { chunkAddressesAreOffsets = false }
            _ = HDF5Library.errorReason()
            let root = HDF5Handle(try HDF5Library.check(H5Gopen2(handle.id, "/", cattn_h5p_default()), file: path, dataset: "/", "cannot open the root group"), .group)
            attributes = try readAttributes(of: root.id, owner: "/")
            try walk(group: handle.id, path: "")
        }
    }

    /// Lists the group's members in name order, recursing into groups.
    private func walk(group: hid_t, path: String) throws {
        var fileNumber: UInt = 0
        var address: haddr_t = 0
        if cattn_object_address(group, &fileNumber, &address) >= 0 {
            guard visitedGroups.insert([UInt64(fileNumber), UInt64(address)]).inserted else { return }
        } else {
            _ = HDF5Library.errorReason()
        }
        var info = H5G_info_t()
        _ = try HDF5Library.check(H5Gget_info(group, &info), file: file, dataset: path.isEmpty ? "/" : path, "cannot list the group")
        for index in 0..<info.nlinks {
            let size = try HDF5Library.check(H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, cattn_h5p_default()),
                                             file: file, dataset: path, "cannot read a link name")
            var buffer = [CChar](repeating: 0, count: Int(size) + 1)
            _ = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, cattn_h5p_default())
            let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let childPath = path + "/" + name
            // Only hard links are followed: a soft or external link is an alias (or a loop), not data.
            guard cattn_is_hard_link(group, name) == 1 else {
                _ = HDF5Library.errorReason()
                skippedLinks.append(childPath)
                continue
            }
            let object = H5Oopen(group, name, cattn_h5p_default())
            guard object >= 0 else {
                // A dangling soft or external link: list nothing for it.
                _ = HDF5Library.errorReason()
                continue
            }
            let owned = HDF5Handle(object, .object)
            switch H5Iget_type(owned.id) {
            case H5I_GROUP:
                try walk(group: owned.id, path: childPath)
            case H5I_DATASET:
                let dataset = HDF5Handle(try HDF5Library.check(H5Dopen2(group, name, cattn_h5p_default()), file: file, dataset: childPath, "cannot open the dataset"), .dataset)
                tensors.append(try HDF5Tensor(file: file, path: childPath, dataset: dataset, fileHandle: handle, rawFile: rawFile,
                                              directChunks: chunkAddressesAreOffsets))
                attributes += try readAttributes(of: dataset.id, owner: childPath)
            default:
                continue
            }
        }
    }

    private func readAttributes(of object: hid_t, owner: String) throws -> [Attribute] {
        let count = H5Aget_num_attrs(object)
        guard count > 0 else { return [] }
        var result: [Attribute] = []
        for index in 0..<count {
            let aid = H5Aopen_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), cattn_h5p_default(), cattn_h5p_default())
            guard aid >= 0 else { _ = HDF5Library.errorReason(); continue }
            let attribute = HDF5Handle(aid, .attribute)
            let nameSize = H5Aget_name(attribute.id, 0, nil)
            guard nameSize >= 0 else { continue }
            var nameBuffer = [CChar](repeating: 0, count: Int(nameSize) + 1)
            _ = H5Aget_name(attribute.id, nameBuffer.count, &nameBuffer)
            let name = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            result.append(Attribute(owner: owner, name: name, value: readAttributeValue(attribute.id)))
        }
        return result
    }

    private func readAttributeValue(_ attribute: hid_t) -> AttributeValue {
        let type = HDF5Handle(H5Aget_type(attribute), .datatype)
        let space = HDF5Handle(H5Aget_space(attribute), .dataspace)
        guard type.id >= 0, space.id >= 0 else { _ = HDF5Library.errorReason(); return .other("unreadable") }
        let count = Int(max(0, H5Sget_simple_extent_npoints(space.id)))
        guard count <= 1 << 20 else { return .other("\(count) values") }
        switch H5Tget_class(type.id) {
        case H5T_INTEGER:
            var values = [Int64](repeating: 0, count: count)
            guard H5Aread(attribute, cattn_native_int64(), &values) >= 0 else { _ = HDF5Library.errorReason(); return .other("unreadable integer") }
            return .integers(values)
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: count)
            guard H5Aread(attribute, cattn_native_double(), &values) >= 0 else { _ = HDF5Library.errorReason(); return .other("unreadable float") }
            return .reals(values)
        case H5T_STRING where H5Tis_variable_str(type.id) > 0:
            switch HDF5Strings.readVariableIsolated(attribute, isDataset: false, fileType: type.id, count: count, file: file) {
            case .success(let strings): return .strings(strings)
            case .failure(let problem): return .other(problem.description)
            }
        case H5T_STRING:
            guard let strings = HDF5Strings.read(type: type.id, count: count, space: space.id, read: { memType, buffer in
                H5Aread(attribute, memType, buffer)
            }) else { _ = HDF5Library.errorReason(); return .other("unreadable string") }
            return .strings(strings)
        case H5T_ENUM:
            // h5py stores a numpy bool as an enum over int8 (FALSE = 0, TRUE = 1): read unconverted, decode the base integers.
            let base = HDF5Handle(H5Tget_super(type.id), .datatype)
            let size = base.id >= 0 ? H5Tget_size(base.id) : 0
            guard [1, 2, 4, 8].contains(size), H5Tget_size(type.id) == size else { _ = HDF5Library.errorReason(); return .other("enum") }
            var raw = [UInt8](repeating: 0, count: count * size)
            guard H5Aread(attribute, type.id, &raw) >= 0 else { _ = HDF5Library.errorReason(); return .other("unreadable enum") }
            let order: ByteOrder = H5Tget_order(base.id) == H5T_ORDER_BE ? .big : .little
            return .integers(IntegerDecoding.decode(raw, size: size, signed: H5Tget_sign(base.id) != H5T_SGN_NONE, order: order))
        default:
            return .other("HDF5 type class \(H5Tget_class(type.id).rawValue)")
        }
    }
}

/// Reading HDF5 strings, variable- or fixed-length, into Swift strings.
enum HDF5Strings {
    /// Why variable-length strings could not be read.
    enum AttributeProblem: Error, CustomStringConvertible {
        case unreadable, corruptHeap
        var description: String {
            switch self {
            case .unreadable: return "unreadable string"
            case .corruptHeap: return "unreadable string: its global heap is corrupt"
            }
        }
    }

    /// Files where a string attribute's global heap has crashed or hung libhdf5 in a child process: their other
    /// string attributes are shown as unreadable without another attempt (each would cost a child and, for a
    /// loop, its 2 s CPU-time limit, at every opening of the file). Datasets are always tried: their collections
    /// may well be intact.
    /// Keyed by the file's identity (device, inode, size, modification time), not its path: a path that
    /// names another file, or the same file rewritten, is tried afresh.
    /// Guarded by `HDF5Library`'s lock, like every call that reaches it.
    nonisolated(unsafe) private static var filesWithCorruptHeaps: Set<String> = []

    private static func identity(of path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "path:" + path }
        return "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// The variable-length strings of a dataset or an attribute of `file`, read by libhdf5 in a child process
    /// (see `cattn_read_vlen_isolated`): libhdf5 1.10 crashes or loops forever on some corrupted global heaps.
    /// Call inside `HDF5Library.call`.
    static func readVariableIsolated(_ object: hid_t, isDataset: Bool, fileType: hid_t, count: Int, file: String) -> Result<[String], AttributeProblem> {
        guard isDataset || !filesWithCorruptHeaps.contains(identity(of: file)) else { return .failure(.corruptHeap) }
        let memType = HDF5Handle(H5Tcopy(cattn_c_s1()), .datatype)
        H5Tset_size(memType.id, cattn_variable_size())
        H5Tset_cset(memType.id, H5Tget_cset(fileType))
        var buffer: UnsafeMutablePointer<CChar>?
        var length = 0
        switch cattn_read_vlen_isolated(object, isDataset ? 1 : 0, memType.id, count, &buffer, &length) {
        case 0:
            defer { free(buffer) }
            guard let buffer else { return .failure(.unreadable) }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: length)
            let strings = bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
            return strings.count == count ? .success(strings) : .failure(.unreadable)
        case -2:
            if !isDataset { filesWithCorruptHeaps.insert(identity(of: file)) }
            return .failure(.corruptHeap)
        case -3:   // no child process: read here
            let space = HDF5Handle(isDataset ? H5Dget_space(object) : H5Aget_space(object), .dataspace)
            let strings = read(type: fileType, count: count, space: space.id, read: { memType, buffer in
                isDataset ? H5Dread(object, memType, cattn_h5s_all(), cattn_h5s_all(), cattn_h5p_default(), buffer) : H5Aread(object, memType, buffer)
            })
            return strings.map { .success($0) } ?? .failure(.unreadable)
        default:
            _ = HDF5Library.errorReason()
            return .failure(.unreadable)
        }
    }

    /// - Parameter read: performs `H5Dread`/`H5Aread` with the given memory type into the buffer.
    static func read(type fileType: hid_t, count: Int, space: hid_t,
                     read: (hid_t, UnsafeMutableRawPointer) -> herr_t) -> [String]? {
        if H5Tis_variable_str(fileType) > 0 {
            let memType = HDF5Handle(H5Tcopy(cattn_c_s1()), .datatype)
            H5Tset_size(memType.id, cattn_variable_size())
            H5Tset_cset(memType.id, H5Tget_cset(fileType))
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { read(memType.id, $0.baseAddress!) }
            guard status >= 0 else { return nil }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            pointers.withUnsafeMutableBytes { _ = H5Dvlen_reclaim(memType.id, space, cattn_h5p_default(), $0.baseAddress!) }
            return strings
        }
        let size = H5Tget_size(fileType)
        guard size > 0 else { return nil }
        let memType = HDF5Handle(H5Tcopy(fileType), .datatype)
        var bytes = [UInt8](repeating: 0, count: size * count)
        let status = bytes.withUnsafeMutableBytes { read(memType.id, $0.baseAddress!) }
        guard status >= 0 else { return nil }
        let spacePadded = H5Tget_strpad(fileType) == H5T_STR_SPACEPAD
        return (0..<count).map { i in
            var slice = bytes[(i * size)..<((i + 1) * size)]
            if spacePadded {
                while let last = slice.last, last == 0x20 || last == 0 { slice = slice.dropLast() }
            } else if let end = slice.firstIndex(of: 0) {
                slice = slice[..<end]  // null-terminated or null-padded: the string ends at the first NUL
            }
            return String(decoding: slice, as: UTF8.self)
        }
    }
}
