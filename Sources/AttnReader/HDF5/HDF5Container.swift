#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
internal import CAttnHDF5
internal import CAttnHDF5Strings
import AttnCore

/// An HDF5 file opened read-only through libhdf5: every dataset is listed, and datasets are read by hyperslab, one
/// block at a time. Attributes are read only when asked for: a root attribute by name (`rootAttribute`, what the
/// commands use), or all of them (`attributes`, for `info`), each object's in one pass.
final class HDF5Container: TensorContainer {
    let file: String
    let formatName = "HDF5"
    private(set) var tensors: [StoredTensor] = []
    private let handle: HDF5Handle
    private var root: HDF5Handle!
    /// The objects that carry attributes (the root, datasets, groups), by path, in the order they were listed.
    private var attributeOwners: [(path: String, object: HDF5Handle)] = []
    /// Every attribute, once `attributes` has read them.
    private var listedAttributes: [Attribute]?
    /// Root attributes already looked up by name (nil: the root has none of that name).
    private var rootLookups: [String: AttributeValue?] = [:]
    /// Groups already listed, by (file number, address): hard links may reach a group twice or loop.
    private var visitedGroups: Set<[UInt64]> = []
    /// Soft and external links that were not followed (listed by `info`).
    private(set) var skippedLinks: [String] = []
    /// The same file opened for `pread`, for datasets whose bytes can be read without libhdf5.
    private let rawFile: ReadOnlyFile?
    /// Whether chunk addresses can be used as file offsets: not after a user block, where libhdf5
    /// versions disagree on whether `H5Dget_chunk_info_by_coord` counts it.
    private var chunkAddressesAreOffsets = true
    /// Attributes counted so far, over every object.
    private var attributeCount = 0

    /// The most attributes a file may carry in all. Real dumps have a handful (a config dict stored as attributes,
    /// a few hundred); thousands of them are a file made to be slow, refused before any is read. (libhdf5 1.10 finds
    /// an attribute by name by looking through the object's list, so `info`, which reads them all, takes time that
    /// grows
    /// with the square of their number: about 0.25 s at this limit.)
    static let attributeLimit = 4096
    /// The most datasets and groups a file may hold: every one is opened and listed.
    static let objectLimit = 100_000

    init(path: String) throws {
        file = path
        rawFile = try? ReadOnlyFile(path: path)
        handle = try HDF5Library.call {
            let id = PathBytes.withCString(path) { H5Fopen($0, cattn_h5f_acc_rdonly(), cattn_h5p_default()) }
            if id < 0 {
                let reason = HDF5Library.errorReason() ?? "libhdf5 could not open it"
                throw AttnError(file: path, "not a readable HDF5 file: \(reason)")
            }
            return try HDF5Handle(checking: id, .file, file: path, dataset: nil, "not a readable HDF5 file")
        }
        try HDF5Library.call {
            var userBlock: hsize_t = 0
            if let plist = HDF5Handle(H5Fget_create_plist(handle.id), .propertyList) {
                if H5Pget_userblock(plist.id, &userBlock) < 0 || userBlock != 0 { chunkAddressesAreOffsets = false }
            } else {
                chunkAddressesAreOffsets = false
            }
            _ = HDF5Library.errorReason()
            root = try HDF5Handle(
                checking: H5Gopen2(handle.id, "/", cattn_h5p_default()), .group, file: path, dataset: "/",
                "cannot open the root group")
            try noteAttributes(of: root, path: "/")
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
        _ = try HDF5Library.check(
            H5Gget_info(group, &info), file: file, dataset: path.isEmpty ? "/" : path, "cannot list the group")
        guard info.nlinks <= UInt64(Self.objectLimit),
            tensors.count + visitedGroups.count + Int(info.nlinks) <= Self.objectLimit
        else {
            throw AttnError(
                file: file, dataset: path.isEmpty ? "/" : path,
                """
                holds \(info.nlinks) members, more than the \(Self.objectLimit) datasets and groups attninspect \
                lists in one file
                """
            )
        }
        // The links' names (as bytes) and kinds, in one pass.
        var links: [(name: [CChar], isHard: Bool)] = []
        let status = withUnsafeMutablePointer(to: &links) { pointer in
            cattn_link_names(
                group,
                { context, name, isHard in
                    guard let context, let name else { return 1 }
                    context.assumingMemoryBound(to: [([CChar], Bool)].self).pointee.append(
                        (Array(UnsafeBufferPointer(start: name, count: strlen(name) + 1)), isHard != 0))
                    return 0
                }, UnsafeMutableRawPointer(pointer))
        }
        _ = try HDF5Library.check(status, file: file, dataset: path.isEmpty ? "/" : path, "cannot list the group")
        for (buffer, isHard) in links {
            let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let childPath = path + "/" + name
            // A link is opened by its name, which libhdf5 reads as a path: a name holding '/' (HDF5 never writes one)
            // would reach through another link, an external one included, to another file.
            guard !buffer.contains(CChar(UInt8(ascii: "/"))), name != "." else {
                throw AttnError(
                    file: file, dataset: path.isEmpty ? "/" : path,
                    """
                    holds a link named '\(name)': a name with '/' (or '.') is not a link HDF5 writes, and would \
                    lead elsewhere; the file is corrupt or crafted
                    """
                )
            }
            // Only hard links are followed: a soft or external link is an alias (or a loop), not data.
            guard isHard else {
                _ = HDF5Library.errorReason()
                skippedLinks.append(childPath)
                continue
            }
            let object = H5Oopen(group, buffer, cattn_h5p_default())
            guard let owned = HDF5Handle(object, .object) else {
                // A dangling soft or external link: list nothing for it.
                _ = HDF5Library.errorReason()
                continue
            }
            switch H5Iget_type(owned.id) {
            case H5I_GROUP:
                try noteAttributes(of: owned, path: childPath)
                try walk(group: owned.id, path: childPath)
            case H5I_DATASET:
                let dataset = try HDF5Handle(
                    checking: H5Dopen2(group, buffer, cattn_h5p_default()), .dataset, file: file, dataset: childPath,
                    "cannot open the dataset")
                tensors.append(
                    try HDF5Tensor(
                        file: file, path: childPath, dataset: dataset, fileHandle: handle, rawFile: rawFile,
                        directChunks: chunkAddressesAreOffsets))
                try noteAttributes(of: dataset, path: childPath)
            default:
                continue
            }
        }
    }

    /// Counts the object's attributes (from its header, reading none) and remembers it if it has any.
    private func noteAttributes(of object: HDF5Handle, path: String) throws {
        let count = cattn_attribute_count(object.id)
        guard count > 0 else { _ = HDF5Library.errorReason(); return }
        attributeCount += Int(count)
        if attributeCount > Self.attributeLimit {
            let soFar = attributeCount == Int(count) ? "" : " (\(attributeCount) in the file so far)"
            throw AttnError(
                file: file, dataset: path,
                """
                carries \(count) attributes\(soFar), more than the \(Self.attributeLimit) attninspect reads in \
                one file: not an attention dump it will read
                """
            )
        }
        attributeOwners.append((path, object))
    }

    /// Every attribute of the file (root first, then groups and datasets in the order listed), read on first use.
    var attributes: [Attribute] {
        if let listedAttributes { return listedAttributes }
        // A few hundred open at a time, over all objects: libhdf5 1.10 looks through every open attribute when it
        // opens another (keeping them all open makes the reading quadratic), and each batch's variable-length
        // strings are read in one child process (one per attribute took a fork each: 50 s for 6000).
        let all: [Attribute] = HDF5Library.call {
            var result: [Attribute] = []
            var batch: [(owner: String, name: String, handle: HDF5Handle)] = []
            func flush() {
                result += zip(batch, readAttributeValues(batch.map(\.handle))).map {
                    Attribute(owner: $0.owner, name: $0.name, value: $1)
                }
                batch.removeAll()
            }
            let owners = attributeOwners
            let listed = attributeNamesIsolated(owners.map(\.object.id))
            for (owner, names) in zip(owners, listed) {
                if names?.complete != true {
                    let why = names == nil ? "libhdf5 crashed listing them" : "libhdf5 could not list them all"
                    result.append(
                        Attribute(owner: owner.path, name: "(attributes)", value: .other("damaged: \(why)")))
                }
                for name in names?.names ?? [] {
                    guard let attribute = HDF5Handle(H5Aopen(owner.object.id, name, cattn_h5p_default()), .attribute)
                    else {
                        _ = HDF5Library.errorReason()
                        continue
                    }
                    batch.append(
                        (
                            owner.path, String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self),
                            attribute
                        ))
                    if batch.count == 256 { flush() }
                }
            }
            flush()
            return result
        }
        listedAttributes = all
        return all
    }

    /// A root attribute by name, read on first use; nil when the root has none of that name.
    func rootAttribute(_ name: String) -> AttributeValue? {
        if let known = rootLookups[name] { return known }
        let value: AttributeValue? = HDF5Library.call {
            guard H5Aexists(root.id, name) > 0 else { _ = HDF5Library.errorReason(); return nil }
            guard let attribute = HDF5Handle(H5Aopen(root.id, name, cattn_h5p_default()), .attribute) else {
                _ = HDF5Library.errorReason()
                return .other("unreadable")
            }
            return readAttributeValues([attribute])[0]
        }
        rootLookups[name] = value
        return value
    }

    /// The attribute names of each object (NUL-terminated C strings), listed in a child process: a damaged attribute
    /// table crashes libhdf5 1.10 (`H5A__attr_release_table`), and then ends only the child. nil for an object
    /// whose names could not be listed; the objects after it are listed by another child.
    private func attributeNamesIsolated(_ objects: [hid_t]) -> [(names: [[CChar]], complete: Bool)?] {
        var result = [(names: [[CChar]], complete: Bool)?](repeating: nil, count: objects.count)
        var start = 0
        while start < objects.count {
            let ids = objects[start...].map { Int64($0) }
            var buffer: UnsafeMutablePointer<CChar>?
            var length = 0, done = 0
            let status = ids.withUnsafeBufferPointer {
                cattn_attribute_names_isolated(
                    $0.baseAddress, ids.count, HDF5Strings.textLimit, &buffer, &length, &done)
            }
            defer { free(buffer) }
            if status == -3 {  // no child process could be made: list them here
                for k in start..<objects.count { result[k] = (attributeNames(of: objects[k]), true) }
                return result
            }
            // Records: names ended by NUL, an empty name, a status byte.
            var record: [[CChar]] = [], at = 0, k = start
            while at < length, let base = buffer {
                let name = Array(UnsafeBufferPointer(start: base + at, count: strlen(base + at) + 1))
                at += name.count
                if name.count > 1 {
                    record.append(name)
                    continue
                }
                // The status byte: names listed before a libhdf5 error are kept, and the error said.
                result[k] = (record, base[at] == 0)
                at += 1
                record = []
                k += 1
            }
            if status == 0 { break }
            start += done + 1  // object start + done crashed the child (or could not be listed): nil
        }
        return result
    }

    /// The names of an object's attributes (NUL-terminated C strings), in one pass (`H5Aiterate2`).
    private func attributeNames(of object: hid_t) -> [[CChar]] {
        var names: [[CChar]] = []
        let status = withUnsafeMutablePointer(to: &names) { pointer in
            cattn_attribute_names(
                object,
                { context, name in
                    guard let context, let name else { return 1 }
                    context.assumingMemoryBound(to: [[CChar]].self).pointee.append(
                        Array(UnsafeBufferPointer(start: name, count: strlen(name) + 1)))
                    return 0
                }, UnsafeMutableRawPointer(pointer))
        }
        if status < 0 { _ = HDF5Library.errorReason() }
        return names
    }

    /// The values of open attributes: numbers and fixed-length strings read here, variable-length strings together
    /// in one child process.
    private func readAttributeValues(_ attributes: [HDF5Handle]) -> [AttributeValue] {
        var values = [AttributeValue](repeating: .other("unreadable"), count: attributes.count)
        var isolated: [(index: Int, count: Int, fileType: HDF5Handle)] = []
        for (index, attribute) in attributes.enumerated() {
            switch readAttributeValue(attribute.id) {
            case .value(let value): values[index] = value
            case .variableStrings(let count, let type): isolated.append((index, count, type))
            }
        }
        if !isolated.isEmpty {
            let results = withExtendedLifetime(isolated) {
                HDF5Strings.readVariableIsolated(
                    isolated.map { (attributes[$0.index].id, $0.fileType.id, $0.count) }, isDataset: false, file: file)
            }
            for (item, result) in zip(isolated, results) {
                switch result {
                case .success(let strings): values[item.index] = .strings(strings)
                case .failure(let problem): values[item.index] = .other(problem.description)
                }
            }
        }
        return values
    }

    private enum Read { case value(AttributeValue), variableStrings(count: Int, fileType: HDF5Handle) }

    private func readAttributeValue(_ attribute: hid_t) -> Read {
        guard let type = HDF5Handle(H5Aget_type(attribute), .datatype),
            let space = HDF5Handle(H5Aget_space(attribute), .dataspace)
        else {
            _ = HDF5Library.errorReason()
            return .value(.other("unreadable"))
        }
        let count = Int(max(0, H5Sget_simple_extent_npoints(space.id)))
        guard count <= 1 << 20 else { return .value(.other("\(count) values")) }
        switch H5Tget_class(type.id) {
        case H5T_INTEGER:
            // Unsigned 64-bit values above Int64.max are read as unsigned, not clamped.
            if H5Tget_sign(type.id) == H5T_SGN_NONE && H5Tget_size(type.id) == 8 {
                var values = [UInt64](repeating: 0, count: count)
                guard H5Aread(attribute, cattn_native_uint64(), &values) >= 0 else {
                    _ = HDF5Library.errorReason(); return .value(.other("unreadable integer"))
                }
                if values.allSatisfy({ $0 <= UInt64(Int64.max) }) { return .value(.integers(values.map { Int64($0) })) }
                return .value(.unsigned(values))
            }
            var values = [Int64](repeating: 0, count: count)
            guard H5Aread(attribute, cattn_native_int64(), &values) >= 0 else {
                _ = HDF5Library.errorReason(); return .value(.other("unreadable integer"))
            }
            return .value(.integers(values))
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: count)
            guard H5Aread(attribute, cattn_native_double(), &values) >= 0 else {
                _ = HDF5Library.errorReason(); return .value(.other("unreadable float"))
            }
            return .value(.reals(values))
        case H5T_STRING where H5Tis_variable_str(type.id) > 0:
            return .variableStrings(count: count, fileType: type)
        case H5T_STRING:
            guard
                let strings = HDF5Strings.read(
                    type: type.id, count: count, space: space.id,
                    read: { memType, buffer in
                        H5Aread(attribute, memType, buffer)
                    })
            else { _ = HDF5Library.errorReason(); return .value(.other("unreadable string")) }
            return .value(.strings(strings))
        case H5T_ENUM:
            // h5py stores a numpy bool as an enum over int8 (FALSE = 0, TRUE = 1): read unconverted, decode the base
            // integers.
            guard let base = HDF5Handle(H5Tget_super(type.id), .datatype), case let size = H5Tget_size(base.id),
                [1, 2, 4, 8].contains(size),
                H5Tget_size(type.id) == size
            else { _ = HDF5Library.errorReason(); return .value(.other("enum")) }
            var raw = [UInt8](repeating: 0, count: count * size)
            guard H5Aread(attribute, type.id, &raw) >= 0 else {
                _ = HDF5Library.errorReason(); return .value(.other("unreadable enum"))
            }
            let order: ByteOrder = H5Tget_order(base.id) == H5T_ORDER_BE ? .big : .little
            return .value(
                .integers(
                    IntegerDecoding.decode(raw, size: size, signed: H5Tget_sign(base.id) != H5T_SGN_NONE, order: order))
            )
        default:
            return .value(.other("HDF5 type class \(H5Tget_class(type.id).rawValue)"))
        }
    }
}

/// Reading HDF5 strings, variable- or fixed-length, into Swift strings.
enum HDF5Strings {
    /// Why variable-length strings could not be read.
    enum AttributeProblem: Error, CustomStringConvertible {
        case unreadable, corruptHeap, tooLarge
        var description: String {
            switch self {
            case .unreadable: return "unreadable string"
            case .corruptHeap: return "unreadable string: its global heap is corrupt"
            case .tooLarge:
                return
                    "unread string: with the others read with it, more than \(HDF5Strings.textLimit >> 20) MiB of text"
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
        guard PathBytes.withCString(path, { stat($0, &info) }) == 0 else { return "path:" + path }
        return "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// The most text one child process may send (a few strings can point at one large heap object each).
    static let textLimit = 256 << 20

    /// The variable-length strings of datasets or attributes of `file` (`objects`: the object, its file type and its
    /// number of strings), read by libhdf5 in one child process (see `cattn_read_vlen_isolated`): libhdf5 1.10
    /// crashes or loops forever on some corrupted global heaps. When the child dies, the object it died on is
    /// reported as having a corrupt heap and the rest are not tried (for attributes, the file is remembered so
    /// that later readings do not try again). Call inside `HDF5Library.call`.
    static func readVariableIsolated(
        _ objects: [(object: hid_t, fileType: hid_t, count: Int)], isDataset: Bool, file: String
    ) -> [Result<[String], AttributeProblem>] {
        guard isDataset || !filesWithCorruptHeaps.contains(identity(of: file)) else {
            return objects.map { _ in .failure(.corruptHeap) }
        }
        var memTypes: [HDF5Handle] = []
        for object in objects {
            guard let memType = HDF5Handle(H5Tcopy(cattn_c_s1()), .datatype) else {
                _ = HDF5Library.errorReason()
                return objects.map { _ in .failure(.unreadable) }
            }
            H5Tset_size(memType.id, cattn_variable_size())
            H5Tset_cset(memType.id, H5Tget_cset(object.fileType))
            memTypes.append(memType)
        }
        var buffer: UnsafeMutablePointer<CChar>?
        var length = 0, done = 0
        // The memory types stay open until the child has read with them (an optimised build would close them
        // as soon as their ids were taken).
        let status = withExtendedLifetime(memTypes) {
            cattn_read_vlen_isolated(
                objects.map(\.object), memTypes.map(\.id), objects.map(\.count), objects.count, isDataset ? 1 : 0,
                textLimit, &buffer, &length, &done)
        }
        defer { free(buffer) }
        if status == -3 {  // no child process: read here
            return objects.map { object in
                guard
                    let space = HDF5Handle(
                        isDataset ? H5Dget_space(object.object) : H5Aget_space(object.object), .dataspace)
                else {
                    _ = HDF5Library.errorReason()
                    return .failure(.unreadable)
                }
                let strings = read(
                    type: object.fileType, count: object.count, space: space.id,
                    read: { memType, buffer in
                        isDataset
                            ? H5Dread(
                                object.object, memType, cattn_h5s_all(), cattn_h5s_all(), cattn_h5p_default(), buffer)
                            : H5Aread(object.object, memType, buffer)
                    })
                return strings.map { .success($0) } ?? .failure(.unreadable)
            }
        }
        // The complete records: a status byte, then (when 0) the object's strings, each ended by NUL.
        var results: [Result<[String], AttributeProblem>] = []
        if let buffer {
            let bytes = UnsafeBufferPointer(
                start: UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: length)
            var at = 0
            for object in objects.prefix(done) {
                let flag = bytes[at]
                at += 1
                guard flag == 0 else { results.append(.failure(.unreadable)); continue }
                var strings: [String] = []
                strings.reserveCapacity(object.count)
                for _ in 0..<object.count {
                    let end = bytes[at...].firstIndex(of: 0)!
                    strings.append(String(decoding: bytes[at..<end], as: UTF8.self))
                    at = end + 1
                }
                results.append(.success(strings))
            }
        }
        if status == -2 {
            if !isDataset { filesWithCorruptHeaps.insert(identity(of: file)) }
            results += objects.dropFirst(results.count).map { _ in .failure(.corruptHeap) }
        } else if status == -4 {
            results += objects.dropFirst(results.count).map { _ in .failure(.tooLarge) }
        } else {
            _ = HDF5Library.errorReason()
            results += objects.dropFirst(results.count).map { _ in .failure(.unreadable) }
        }
        return results
    }

    /// - Parameter read: performs `H5Dread`/`H5Aread` with the given memory type into the buffer.
    static func read(
        type fileType: hid_t, count: Int, space: hid_t,
        read: (hid_t, UnsafeMutableRawPointer) -> herr_t
    ) -> [String]? {
        if H5Tis_variable_str(fileType) > 0 {
            guard let memType = HDF5Handle(H5Tcopy(cattn_c_s1()), .datatype) else { return nil }
            H5Tset_size(memType.id, cattn_variable_size())
            H5Tset_cset(memType.id, H5Tget_cset(fileType))
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { read(memType.id, $0.baseAddress!) }
            guard status >= 0 else { return nil }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            pointers.withUnsafeMutableBytes {
                _ = H5Dvlen_reclaim(memType.id, space, cattn_h5p_default(), $0.baseAddress!)
            }
            return strings
        }
        let size = H5Tget_size(fileType)
        guard size > 0 else { return nil }
        guard let memType = HDF5Handle(H5Tcopy(fileType), .datatype) else { return nil }
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
