import AttnCore

/// A file written by `torch.save` (PyTorch 1.6 and later): a zip archive, stored not compressed, of
/// `<folder>/data.pkl` (the pickled object), `<folder>/data/<key>` (one record per storage) and
/// `<folder>/byteorder`, where the folder is the file's name when it was saved (`archive` when saved to a file
/// object). `data.pkl` is read by `RestrictedPickle`, which runs nothing; each tensor is then read from its storage
/// record by offset, with its strides and storage offset, a contiguous one through a mapping like safetensors.
///
/// Tensors are named by where they sit: a lone tensor by the file's name, a tuple's or list's items by their index
/// (`[0]`, `[1]`, ... at the root), a dict's values by their key, joined with `/` (`attentions/3`, `q`, `tokens`).
/// A list of strings (or a list of equal-length lists of them) is text: token labels. The root dict's numbers,
/// booleans, strings and lists of them are its root attributes (`causal`, `scale`, `patch_grid`, `layer_types`).
final class TorchContainer: TensorContainer {
    let file: String
    let formatName = "PyTorch (torch.save, zip)"
    let tensors: [StoredTensor]
    let attributes: [Attribute]
    /// Root string lists read as text tensors, answered as attributes too (`layer_types`) but listed once.
    private let textAttributes: [String: AttributeValue]

    /// At most this many containers, tensors and values are visited (a dump has a few thousand): the memo lets a
    /// small pickle name one tuple many times.
    static let maximumVisits = 100_000
    /// The pickle is read whole; a dump's is a few kilobytes (a pickle of a hundred thousand tensors, a few MB).
    static let maximumPickle = 64_000_000
    /// The most bytes of tensor names, and the most strings held as labels or attributes: names and lists can be
    /// named many times through the memo, each time copied.
    static let maximumNameBytes = 64 << 20
    static let maximumStrings = 1 << 22

    /// The folder of `data.pkl` when the archive is a `torch.save` file (or a TorchScript one, refused later).
    static func folder(of archive: ZipArchive) -> String? {
        for entry in archive.entries {
            if entry.name == "data.pkl" { return "" }
            if entry.name.hasSuffix("/data.pkl"), !entry.name.dropLast(9).contains("/") {
                return String(entry.name.dropLast(8))
            }
        }
        return nil
    }

    init(file: ReadOnlyFile, archive: ZipArchive, folder: String) throws {
        self.file = file.path
        let path = file.path
        func fail(_ message: String) -> AttnError { AttnError(file: path, message) }
        var records: [String: ZipArchive.Entry] = [:]
        for entry in archive.entries where entry.name.hasPrefix(folder) {
            records[String(entry.name.dropFirst(folder.count))] = entry
        }
        if records["constants.pkl"] != nil || records.keys.contains(where: { $0.hasPrefix("code/") }) {
            throw fail(
                """
                is a TorchScript archive (torch.jit.save): it holds a program, which attninspect never runs, not \
                saved tensors; save the tensors with torch.save
                """
            )
        }
        func contents(_ name: String, limit: Int) throws -> [UInt8]? {
            guard let entry = records[name] else { return nil }
            guard entry.method == 0, entry.compressedSize == entry.uncompressedSize else {
                throw AttnError(
                    file: path, dataset: folder + name,
                    "is compressed (zip method \(entry.method)): expected it stored, as torch.save writes it")
            }
            guard entry.uncompressedSize <= limit else {
                throw AttnError(
                    file: path, dataset: folder + name,
                    "holds \(entry.uncompressedSize) bytes, more than the \(limit) a torch.save file's needs")
            }
            let bytes = try file.bytes(
                at: try ZipArchive.dataOffset(of: entry, in: file), count: entry.uncompressedSize,
                dataset: folder + name)
            var checksum = MemberChecksum()
            bytes.withUnsafeBytes { checksum.add($0) }
            try checksum.verify(entry.crc, file: path, member: folder + name)
            return bytes
        }
        guard let pickle = try contents("data.pkl", limit: Self.maximumPickle) else {
            throw fail("corrupt torch.save archive: no data.pkl")
        }
        var order = ByteOrder.little
        if let raw = try contents("byteorder", limit: 16) {
            switch String(decoding: raw, as: UTF8.self) {
            case "little": order = .little
            case "big": order = .big
            default:
                throw AttnError(
                    file: path, dataset: folder + "byteorder", "expected \"little\" or \"big\", found something else")
            }
        }
        let stem = path.split(separator: "/").last.map(String.init) ?? path
        let rootName = [".pt", ".pth", ".bin", ".ckpt"].first { stem.hasSuffix($0) }.map {
            String(stem.dropLast($0.count))
        }
        var walk = TorchWalk(file: file, records: records, folder: folder, order: order)
        var attributes: [Attribute] = []
        var textAttributes: [String: AttributeValue] = [:]
        let fail = { AttnError(file: path, dataset: folder + "data.pkl", $0) }
        try RestrictedPickle.read(pickle, fail: fail) { root in
            try walk.visit(root, name: rootName ?? stem, depth: 0)
            guard case .dict(let box) = root else { return }
            var held = walk.strings
            for (key, value) in box.pairs {
                guard case .string(let name) = key, let attribute = Self.attributeValue(value) else { continue }
                if case .strings(let texts) = attribute { held += texts.count }
                guard held <= Self.maximumStrings else { throw walk.tooMuch() }
                if case .strings = attribute, case .list = value {
                    textAttributes[name] = attribute
                } else {
                    attributes.append(Attribute(owner: "/", name: name, value: attribute))
                }
            }
        }
        tensors = walk.tensors
        self.attributes = attributes
        self.textAttributes = textAttributes
    }

    func rootAttribute(_ name: String) -> AttributeValue? {
        attributes.first { $0.name == name }?.value ?? textAttributes[name]
    }

    /// A number, boolean or string, or a list of one kind of them, as an attribute; nil for anything else.
    static func attributeValue(_ value: PickleValue) -> AttributeValue? {
        let items: [PickleValue]
        switch value {
        case .tuple(let t): items = t
        case .list(let box): items = box.items
        default: items = [value]
        }
        guard !items.isEmpty, items.count <= 4096 else { return nil }
        var integers: [Int64] = [], reals: [Double] = [], strings: [String] = []
        for item in items {
            switch item {
            case .bool(let b): integers.append(b ? 1 : 0); reals.append(b ? 1 : 0)
            case .int(let i): integers.append(i); reals.append(Double(i))
            case .real(let r): reals.append(r)
            case .string(let s): strings.append(s)
            default: return nil
            }
        }
        if integers.count == items.count { return .integers(integers) }
        if reals.count == items.count { return .reals(reals) }
        if strings.count == items.count { return .strings(strings) }
        return nil
    }
}

/// Finds the tensors and text in an unpickled object, names them by where they sit, and checks each tensor
/// against its storage record.
private struct TorchWalk {
    let file: ReadOnlyFile
    let records: [String: ZipArchive.Entry]
    let folder: String
    let order: ByteOrder
    var tensors: [StoredTensor] = []
    /// Strings copied into labels so far, and bytes of tensor names (both bounded: the memo can repeat them).
    private(set) var strings = 0
    private var nameBytes = 0
    private var visits = 0
    private var storages: [String: (offset: Int, count: Int, type: TorchStorageType)] = [:]

    init(file: ReadOnlyFile, records: [String: ZipArchive.Entry], folder: String, order: ByteOrder) {
        self.file = file
        self.records = records
        self.folder = folder
        self.order = order
    }

    private func fail(_ name: String, _ message: String) -> AttnError {
        AttnError(file: file.path, dataset: name, message)
    }

    func tooMuch() -> AttnError {
        AttnError(
            file: file.path, dataset: folder + "data.pkl",
            """
            names more than \(TorchContainer.maximumStrings) strings or \(TorchContainer.maximumNameBytes >> 20) MiB \
            of tensor names (the memo can name one list or key many times): expected tensors in a few containers
            """
        )
    }

    mutating func visit(_ value: PickleValue, name: String, depth: Int) throws {
        visits += 1
        guard depth <= RestrictedPickle.maximumDepth else {
            throw AttnError(
                file: file.path, dataset: folder + "data.pkl",
                """
                nests containers more than \(RestrictedPickle.maximumDepth) deep (a list holding itself?): \
                expected tensors in a few containers
                """
            )
        }
        guard visits <= TorchContainer.maximumVisits else {
            throw AttnError(
                file: file.path, dataset: folder + "data.pkl",
                """
                names more than \(TorchContainer.maximumVisits) values (the memo can name one many times): expected \
                tensors in a few containers
                """
            )
        }
        func child(_ key: String) -> String { depth == 0 ? key : name + "/" + key }
        // A sequence's items at the root are `[0]`, `[1]` (as torch.load's result is indexed); inside a dict, `q/0`.
        func index(_ i: Int) -> String { depth == 0 ? "[\(i)]" : String(i) }
        switch value {
        case .tensor(let t):
            nameBytes += name.utf8.count
            guard nameBytes <= TorchContainer.maximumNameBytes else { throw tooMuch() }
            tensors.append(try tensor(t, name: name))
        case .tuple(let items):
            if let text = try text(items, name: name) { tensors.append(text); return }
            for (i, item) in items.enumerated() { try visit(item, name: child(index(i)), depth: depth + 1) }
        case .list(let box):
            if let text = try text(box.items, name: name) { tensors.append(text); return }
            for (i, item) in box.items.enumerated() { try visit(item, name: child(index(i)), depth: depth + 1) }
        case .dict(let box):
            for (key, item) in box.pairs {
                let part: String
                switch key {
                case .string(let s): part = s
                case .int(let i): part = String(i)
                default: continue
                }
                try visit(item, name: child(part), depth: depth + 1)
            }
        default:
            return
        }
    }

    /// A list of strings, or of equal-length lists of strings, as a text tensor; nil otherwise.
    private mutating func text(_ items: [PickleValue], name: String) throws -> StoredTensor? {
        func texts(_ values: [PickleValue]) -> [String]? {
            let out = values.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
            return out.count == values.count ? out : nil
        }
        guard !items.isEmpty else { return nil }
        var shape = [items.count]
        var all = texts(items)
        if all == nil {
            let rows = items.compactMap {
                if case .list(let box) = $0 { return texts(box.items) } else { return nil }
            }
            guard rows.count == items.count, let width = rows.first?.count, rows.allSatisfy({ $0.count == width })
            else { return nil }
            shape.append(width)
            all = rows.flatMap { $0 }
        }
        strings += all!.count
        nameBytes += name.utf8.count
        guard strings <= TorchContainer.maximumStrings, nameBytes <= TorchContainer.maximumNameBytes else {
            throw tooMuch()
        }
        return TextTensor(
            info: TensorInfo(name: name, shape: shape, element: .text, storage: "list of str"), file: file.path, all!)
    }

    private mutating func tensor(_ t: PickleTensor, name: String) throws -> StoredTensor {
        let type = t.storage.type
        let storage: (offset: Int, count: Int, type: TorchStorageType)
        if let known = storages[t.storage.key] {
            guard known.type == type else {
                throw fail(
                    name, "storage \(t.storage.key) is named both \(known.type) and \(type): the file is corrupt")
            }
            storage = known
        } else {
            let record = "data/" + t.storage.key
            guard let entry = records[record] else {
                throw fail(name, "its storage record \(folder + record) is missing: the file is truncated or corrupt")
            }
            guard entry.method == 0, entry.compressedSize == entry.uncompressedSize else {
                throw fail(name, "its storage record is compressed (zip method \(entry.method)): expected it stored")
            }
            let (bytes, overflow) = t.storage.elementCount.multipliedReportingOverflow(by: type.size)
            guard !overflow, bytes == entry.uncompressedSize else {
                throw fail(
                    name,
                    """
                    its storage claims \(t.storage.elementCount) elements of \(type.dtypeName), but the record \
                    \(folder + record) holds \(entry.uncompressedSize) bytes
                    """
                )
            }
            storage = (try ZipArchive.dataOffset(of: entry, in: file), t.storage.elementCount, type)
            storages[t.storage.key] = storage
        }
        guard MemoryBudget.bytes(t.shape, elementSize: type.size) != nil else {
            throw fail(name, "shape \(formatShape(t.shape)) has more elements than a file can hold")
        }
        guard t.offset <= storage.count else {
            throw fail(
                name,
                "starts at element \(t.offset) of storage \(t.storage.key), which has \(storage.count): corrupt")
        }
        if !t.shape.contains(0) {
            var last = t.offset
            for (n, s) in zip(t.shape, t.strides) {
                let (step, o1) = (n - 1).multipliedReportingOverflow(by: s)
                let (sum, o2) = last.addingReportingOverflow(step)
                guard !o1, !o2 else { last = Int.max; break }
                last = sum
            }
            guard last < storage.count else {
                throw fail(
                    name,
                    """
                    shape \(formatShape(t.shape)) with strides \(formatShape(t.strides)) at storage offset \
                    \(t.offset) reaches past the \(storage.count) elements of storage \(t.storage.key): the file \
                    is corrupt
                    """
                )
            }
        }
        return TorchTensor(
            name: name, file: file, base: storage.offset, type: type, tensor: t, order: order,
            key: t.storage.key)
    }
}

/// A tensor of a `torch.save` file: `shape` elements at `strides` (in elements) from element `offset` of a
/// storage whose element 0 is at byte `base` of the file. Contiguous tensors are read by offset (and mapped);
/// others (transposed or sliced views, saved as they are) are gathered a block at a time.
final class TorchTensor: StoredTensor {
    let info: TensorInfo
    var label: String? { info.name }
    private let file: ReadOnlyFile
    private let base: Int
    private let type: TorchStorageType
    private let offset: Int
    private let strides: [Int]
    private let order: ByteOrder
    private let contiguous: Bool

    init(
        name: String, file: ReadOnlyFile, base: Int, type: TorchStorageType, tensor: PickleTensor, order: ByteOrder,
        key: String
    ) {
        self.file = file
        self.base = base
        self.type = type
        self.offset = tensor.offset
        self.strides = tensor.strides
        self.order = order
        contiguous = Self.isCOrder(tensor.shape[...], tensor.strides[...])
        var storage = "torch \(type.dtypeName), storage \(key)"
        if tensor.offset != 0 { storage += " from element \(tensor.offset)" }
        if !contiguous { storage += ", strides \(formatShape(tensor.strides))" }
        if order == .big { storage += ", big-endian" }
        info = TensorInfo(
            name: name, shape: tensor.shape,
            element: type.floating.map { .floating($0) } ?? .unsupported(type.dtypeName),
            storage: storage)
    }

    /// Whether elements at `strides` over `shape` lie one after another in C order (axes of length 1 aside).
    static func isCOrder(_ shape: ArraySlice<Int>, _ strides: ArraySlice<Int>) -> Bool {
        if shape.contains(0) { return true }  // nothing to read
        var expected = 1
        for (n, s) in zip(shape, strides).reversed() where n != 1 {
            guard s == expected else { return false }
            expected *= n
        }
        return true
    }

    var directStorage: DirectStorage? {
        guard contiguous, let floating = type.floating else { return nil }
        return .contiguous(file: file, offset: base + offset * type.size, type: floating, order: order)
    }

    func readBlock(leading: [Int]) throws -> [Float] {
        guard let floating = type.floating else {
            throw AttnError(.unsupported, file: file.path, dataset: info.name, unsupportedDtype(info.element))
        }
        let count = try blockCount(leading: leading, file: file.path)
        let raw = try gather(leading: leading, count: count)
        var out = [Float](repeating: 0, count: count)
        raw.withUnsafeBytes { r in
            out.withUnsafeMutableBufferPointer {
                ElementDecoding.decode(r, type: floating, order: order, count: count, into: $0)
            }
        }
        return out
    }

    func readIntegers() throws -> [Int64] {
        guard type.floating == nil else {
            throw AttnError(file: file.path, dataset: info.name, "expected integers or booleans, found \(info.element)")
        }
        let raw = try gather(leading: [], count: try blockCount(leading: [], file: file.path))
        return IntegerDecoding.decode(raw, size: type.size, signed: type.signed, order: order)
    }

    func readStrings() throws -> [String] {
        throw AttnError(file: file.path, dataset: info.name, "expected strings, found a tensor of \(info.element)")
    }

    /// The raw bytes of `tensor[leading...]`, in C order.
    private func gather(leading: [Int], count: Int) throws -> [UInt8] {
        var start = offset
        for (axis, i) in leading.enumerated() { start += i * strides[axis] }
        var out = [UInt8](repeating: 0, count: count * type.size)
        guard count > 0 else { return out }
        var written = 0
        try gather(start, shape[leading.count...], strides[leading.count...], into: &out, at: &written)
        return out
    }

    /// Copies the elements of a block into `out` from `written` on: one read when the block's span is at most a
    /// few times its size, else one block per index of its first axis (a view of a larger tensor), so a read never
    /// spans much more than it keeps.
    private func gather(
        _ start: Int, _ shape: ArraySlice<Int>, _ strides: ArraySlice<Int>, into out: inout [UInt8],
        at written: inout Int
    ) throws {
        let size = type.size
        let count = shape.reduce(1, *)
        var span = 1
        for (n, s) in zip(shape, strides) { span += (n - 1) * s }
        if Self.isCOrder(shape, strides) {
            try out.withUnsafeMutableBytes {
                let target = UnsafeMutableRawBufferPointer(rebasing: $0[written..<(written + count * size)])
                try file.read(at: base + start * size, into: target, dataset: info.name)
            }
            written += count * size
            return
        }
        if span > 4 * count + 4096, shape.count > 1 {
            for i in 0..<shape.first! {
                try gather(
                    start + i * strides.first!, shape.dropFirst(), strides.dropFirst(), into: &out, at: &written)
            }
            return
        }
        if span > 4 * count + 4096 {  // one axis, sparse: element by element
            for i in 0..<shape.first! {
                try out.withUnsafeMutableBytes {
                    let target = UnsafeMutableRawBufferPointer(rebasing: $0[written..<(written + size)])
                    try file.read(at: base + (start + i * strides.first!) * size, into: target, dataset: info.name)
                }
                written += size
            }
            return
        }
        let raw = try file.bytes(at: base + start * size, count: span * size, dataset: info.name)
        let dims = Array(shape), steps = Array(strides)
        var index = [Int](repeating: 0, count: dims.count)
        var element = 0
        for _ in 0..<count {
            for b in 0..<size { out[written + b] = raw[element * size + b] }
            written += size
            var axis = dims.count - 1
            while axis >= 0 {
                index[axis] += 1
                element += steps[axis]
                if index[axis] < dims[axis] { break }
                element -= steps[axis] * dims[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// Strings held in memory (a pickled list of them): token labels.
final class TextTensor: StoredTensor {
    let info: TensorInfo
    var label: String? { info.name }
    private let file: String
    private let strings: [String]

    init(info: TensorInfo, file: String, _ strings: [String]) {
        self.info = info
        self.file = file
        self.strings = strings
    }

    var directStorage: DirectStorage? { nil }
    func readStrings() throws -> [String] { strings }
    func readBlock(leading: [Int]) throws -> [Float] {
        throw AttnError(.unsupported, file: file, dataset: info.name, "holds strings, expected numbers")
    }
    func readIntegers() throws -> [Int64] {
        throw AttnError(file: file, dataset: info.name, "holds strings, expected integers")
    }
}
