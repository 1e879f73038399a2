import AttnCore

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the data. Only the header is read when listing; tensors are read
/// by offset, a block at a time (C order, little-endian). `__metadata__` entries become root attributes.
final class SafetensorsContainer: TensorContainer {
    let file: String
    let formatName = "safetensors"
    let tensors: [StoredTensor]
    let attributes: [Attribute]

    /// The specification's limit on the header (100 MB).
    static let maximumHeader = 100_000_000

    /// Whether the first bytes look like a safetensors header: a plausible length, then `{`.
    static func looksLike(_ file: ReadOnlyFile) -> Bool {
        guard file.size >= 10, let prefix = try? file.bytes(at: 0, count: 9) else { return false }
        let length = prefix[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return length >= 2 && length <= UInt64(min(maximumHeader, file.size - 8)) && prefix[8] == UInt8(ascii: "{")
    }

    init(file: ReadOnlyFile) throws {
        self.file = file.path
        let path = file.path
        func fail(_ message: String) -> AttnError { AttnError(file: path, message) }
        guard file.size >= 8 else { throw fail("file is truncated: expected an 8-byte header length") }
        let lengthBytes = try file.bytes(at: 0, count: 8)
        let length = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(Self.maximumHeader) else {
            throw fail("header length \(length) is over the 100 MB the format allows: not a safetensors file?")
        }
        guard Int(length) <= file.size - 8 else {
            throw fail(
                "file is truncated: the header claims \(length) bytes, the file has \(file.size - 8) after the length")
        }
        let header = try HeaderJSON.parse(try file.bytes(at: 8, count: Int(length)), fail: fail)
        guard case .object(let members) = header else {
            throw fail("corrupt header: expected a JSON object of tensors")
        }
        let dataStart = 8 + Int(length), dataLength = file.size - dataStart
        var tensors: [StoredTensor] = []
        var attributes: [Attribute] = []
        for (name, entry) in members {
            if name == "__metadata__" {
                guard case .object(let pairs) = entry else {
                    throw fail("corrupt header: __metadata__ must map strings to strings")
                }
                for (key, value) in pairs {
                    guard case .string(let text) = value else {
                        throw fail("corrupt header: __metadata__ value of '\(key)' is not a string")
                    }
                    attributes.append(Attribute(owner: "/", name: key, value: Self.attributeValue(text)))
                }
                continue
            }
            func bad(_ message: String) -> AttnError { AttnError(file: path, dataset: name, message) }
            guard case .string(let dtype)? = entry["dtype"], case .array(let dims)? = entry["shape"],
                case .array(let offsets)? = entry["data_offsets"],
                offsets.count == 2, let begin = offsets[0].integer, let end = offsets[1].integer
            else {
                throw bad("corrupt header entry: expected dtype, shape and data_offsets [begin, end]")
            }
            let shape = try dims.map { d -> Int in
                guard let n = d.integer, n >= 0 else {
                    throw bad("corrupt header entry: shape must hold non-negative integers")
                }
                return n
            }
            let element: TensorElement
            var type: ElementType?
            switch dtype {
            case "F16": type = .float16
            case "BF16": type = .bfloat16
            case "F32": type = .float32
            case "F64": type = .float64
            default: break
            }
            let itemSize: Int
            if let type {
                element = .floating(type); itemSize = type.size
            } else {
                let sizes = [
                    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4,
                    "I64": 8, "U64": 8
                ]
                element = .unsupported(dtype.lowercased())
                itemSize = sizes[dtype] ?? 1
            }
            guard begin >= 0, end >= begin, end <= dataLength else {
                throw bad(
                    """
                    data_offsets [\(begin), \(end)] lie outside the \(dataLength) data bytes: the file is \
                    truncated or corrupt
                    """
                )
            }
            guard let bytes = MemoryBudget.bytes(shape, elementSize: itemSize), bytes == end - begin else {
                let needed =
                    MemoryBudget.bytes(shape, elementSize: itemSize).map { "\($0) bytes" }
                    ?? "more bytes than a file can hold"
                throw bad(
                    """
                    shape \(formatShape(shape)) of \(dtype) needs \(needed), but data_offsets give \(end - begin) \
                    bytes
                    """
                )
            }
            let info = TensorInfo(
                name: name, shape: shape, element: element, storage: "\(dtype), bytes \(begin)..<\(end)")
            let integers: [String: Bool] = [
                "BOOL": false, "U8": false, "I8": true, "I16": true, "U16": false, "I32": true, "U32": false,
                "I64": true, "U64": false
            ]
            tensors.append(
                ContiguousTensor(
                    info: info, file: file, offset: dataStart + begin, type: type,
                    integer: integers[dtype].map { (itemSize, $0) }))
        }
        self.tensors = tensors.sorted { $0.name < $1.name }
        self.attributes = attributes
    }

    /// `__metadata__` values are strings; integers and lists of integers (`16`, `[16, 16]`, `16,16`) read as integers.
    static func attributeValue(_ text: String) -> AttributeValue {
        let parts = text.split(whereSeparator: { "[], ".contains($0) })
        let numbers = parts.compactMap { Int64($0) }
        if !parts.isEmpty && numbers.count == parts.count && text.allSatisfy({ "[]0123456789-, ".contains($0) }) {
            return .integers(numbers)
        }
        return .strings([text])
    }
}

/// A tensor stored uncompressed in C order, little-endian, at an offset of a file.
final class ContiguousTensor: StoredTensor {
    let info: TensorInfo
    var label: String? { info.name }
    private let file: ReadOnlyFile
    private let offset: Int
    private let type: ElementType?
    /// For integer and boolean tensors: the element size and whether it is signed.
    private let integer: (size: Int, signed: Bool)?

    init(
        info: TensorInfo, file: ReadOnlyFile, offset: Int, type: ElementType?, integer: (size: Int, signed: Bool)? = nil
    ) {
        self.info = info
        self.file = file
        self.offset = offset
        self.type = type
        self.integer = integer
    }

    func readIntegers() throws -> [Int64] {
        guard let integer else {
            throw AttnError(file: file.path, dataset: info.name, "expected integers or booleans, found \(info.element)")
        }
        var raw = [UInt8](repeating: 0, count: shape.reduce(1, *) * integer.size)
        try raw.withUnsafeMutableBytes { try file.read(at: offset, into: $0, dataset: info.name) }
        return IntegerDecoding.decode(raw, size: integer.size, signed: integer.signed, order: .little)
    }

    var directStorage: DirectStorage? {
        type.map { .contiguous(file: file, offset: offset, type: $0, order: .little) }
    }

    func readBlock(leading: [Int]) throws -> [Float] {
        guard let type else {
            throw AttnError(
                .unsupported, file: file.path, dataset: info.name,
                "unsupported dtype \(info.element): expected F16, BF16, F32 or F64")
        }
        let count = try blockCount(leading: leading, file: file.path)
        var flat = 0
        for (axis, i) in leading.enumerated() { flat = flat * shape[axis] + i }
        var raw = [UInt8](repeating: 0, count: count * type.size)
        try raw.withUnsafeMutableBytes {
            try file.read(at: offset + flat * count * type.size, into: $0, dataset: info.name)
        }
        var out = [Float](repeating: 0, count: count)
        raw.withUnsafeBytes { r in
            out.withUnsafeMutableBufferPointer {
                ElementDecoding.decode(r, type: type, order: .little, count: count, into: $0)
            }
        }
        return out
    }

    func readStrings() throws -> [String] {
        throw AttnError(
            file: file.path, dataset: info.name,
            "expected strings, found \(info.element): safetensors holds numbers only")
    }
}
