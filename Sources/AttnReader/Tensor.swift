import AttnCore

/// What kind of values a stored tensor holds.
public enum TensorElement: Sendable, Equatable, CustomStringConvertible {
    /// A floating type attninspect reads.
    case floating(ElementType)
    /// Text (token labels).
    case text
    /// Anything else, described as the file describes it (`int32`, `complex64`, `object`, ...).
    case unsupported(String)

    public var description: String {
        switch self {
        case .floating(let t): return t.rawValue
        case .text: return "string"
        case .unsupported(let s): return s
        }
    }
}

/// A tensor as listed by `info`: name (HDF5 path or NPZ member), shape and element type.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let element: TensorElement
    /// Storage details worth showing (`chunked (1,1,257,257), gzip`, `fortran order`, `big-endian`).
    public let storage: String?
}

/// A stored tensor that reads sub-blocks addressed by fixed leading indices.
protocol StoredTensor: AnyObject {
    var info: TensorInfo { get }
    /// The dataset name errors give: nil for a lone `.npy` file, whose file name says it all.
    var label: String? { get }
    /// Reads `tensor[leading..., :, ..., :]`: the remaining axes, row-major, as `Float`.
    func readBlock(leading: [Int]) throws -> [Float]
    /// Reads every element as strings (token labels).
    func readStrings() throws -> [String]
    /// Reads every element of an integer or boolean tensor (masks, lengths), C order.
    func readIntegers() throws -> [Int64]
    /// How the elements can be read without the container's library, in parallel: nil when they
    /// cannot (Fortran order, an NPZ member, an HDF5 filter other than deflate and shuffle, ...).
    var directStorage: DirectStorage? { get }
    /// The tensor with its raw elements read as `type` (`--dtype bfloat16` on 2-byte raw data), or nil.
    func reinterpreted(as type: ElementType) -> StoredTensor?
    /// Why the tensor's data is never read (it lives in another file, needs a filter that is not there, was never
    /// written), or nil: known when the file is opened, said before any work starts.
    var unreadable: (kind: AttnError.Kind, reason: String)? { get }
}

extension StoredTensor {
    func reinterpreted(as type: ElementType) -> StoredTensor? { nil }
    var unreadable: (kind: AttnError.Kind, reason: String)? { nil }
}

extension StoredTensor {
    /// Every element as numbers: integers and booleans exactly, floating types through `Float`.
    public func readNumbers(file: String) throws -> [Double] {
        if case .floating = info.element { return try readBlock(leading: []).map(Double.init) }
        return try readIntegers().map(Double.init)
    }
}

/// Elements stored so that any block of rows can be fetched with `pread` on any thread.
enum DirectStorage {
    /// Uncompressed, C order, element 0 at byte `offset` of `file`.
    case contiguous(file: ReadOnlyFile, offset: Int, type: ElementType, order: ByteOrder)
    /// HDF5 chunks of shape `chunk`, each passed through `filters` (in pipeline order) when written.
    /// `locate` gives a chunk's byte range in `file` and its filter mask (bit i set: filter i was
    /// skipped) from its first element's coordinates, or nil when the chunk was never written.
    case chunked(
        file: ReadOnlyFile, chunk: [Int], type: ElementType, order: ByteOrder, filters: [ChunkFilter],
        locate: ([Int]) throws -> ChunkLocation?)
}

/// The HDF5 filters attninspect undoes itself.
enum ChunkFilter: Sendable { case deflate, shuffle }

struct ChunkLocation: Sendable {
    let offset: Int
    let size: Int
    let filterMask: UInt32
    /// The chunk's stored bytes when libhdf5 fetched them (`H5Dread_chunk`) because its address is not a
    /// file offset (after a user block); then `offset` is unused.
    var bytes: [UInt8]? = nil

    /// The most bytes a chunk of `chunkBytes` can take on disk through deflate and shuffle (zlib's worst case is
    /// about 0.03 % over, and libhdf5 stores a chunk unfiltered rather than let it grow): a larger claim is
    /// corruption, refused before its buffer is allocated.
    static func largestStored(chunkBytes: Int) -> Int { chunkBytes + chunkBytes >> 8 + 64 }
}

extension StoredTensor {
    var name: String { info.name }
    var shape: [Int] { info.shape }

    /// The number of elements in the block that `leading` addresses, checked against the shape.
    func blockCount(leading: [Int], file: String) throws -> Int {
        guard leading.count <= shape.count else {
            throw AttnError(
                file: file, dataset: name, "internal: \(leading.count) leading indices for \(shape.count) axes")
        }
        for (axis, index) in leading.enumerated() where index < 0 || index >= shape[axis] {
            throw AttnError(
                file: file, dataset: name, "index \(index) is out of range for axis \(axis) of length \(shape[axis])")
        }
        return shape[leading.count...].reduce(1, *)
    }
}

/// A value attached to a file or dataset (HDF5 attribute).
public enum AttributeValue: Sendable, Equatable, CustomStringConvertible {
    case integers([Int64])
    /// Unsigned 64-bit integers of which one at least is above `Int64.max`.
    case unsigned([UInt64])
    case reals([Double])
    case strings([String])
    case other(String)

    public var description: String {
        func list<T>(_ v: [T]) -> String {
            v.count == 1 ? "\(v[0])" : "[" + v.map { "\($0)" }.joined(separator: ", ") + "]"
        }
        switch self {
        case .integers(let v): return list(v)
        case .unsigned(let v): return list(v)
        case .reals(let v): return list(v)
        case .strings(let v): return v.count == 1 ? v[0] : "[" + v.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case .other(let s): return "<\(s)>"
        }
    }

    /// The integers of an integer attribute (or of a real one holding whole numbers).
    public var integerValues: [Int]? {
        switch self {
        case .integers(let v): return v.map { Int($0) }
        case .unsigned(let v) where v.allSatisfy({ $0 <= UInt64(Int.max) }): return v.map { Int($0) }
        case .reals(let v) where v.allSatisfy({ $0 == $0.rounded() && abs($0) < 1e15 }): return v.map { Int($0) }
        default: return nil
        }
    }

    /// A single true/false value: an integer 0 or 1 (h5py's bool enum reads as one), or the strings
    /// `true`/`false`, `yes`/`no`, `1`/`0` in any case (safetensors metadata).
    public var booleanValue: Bool? {
        switch self {
        case .integers(let v) where v.count == 1 && (v[0] == 0 || v[0] == 1): return v[0] == 1
        case .reals(let v) where v.count == 1 && (v[0] == 0 || v[0] == 1): return v[0] == 1
        case .strings(let v) where v.count == 1:
            switch v[0].lowercased() {
            case "true", "yes", "1": return true
            case "false", "no", "0": return false
            default: return nil
            }
        default: return nil
        }
    }

    /// A single real number (an integer attribute counts; safetensors metadata strings are parsed).
    public var realValue: Double? {
        switch self {
        case .reals(let v) where v.count == 1: return v[0]
        case .integers(let v) where v.count == 1: return Double(v[0])
        case .strings(let v) where v.count == 1: return Double(v[0])
        default: return nil
        }
    }
}

/// A named attribute, on the root (`/`) or on a dataset or group.
public struct Attribute: Sendable, Equatable {
    public let owner: String
    public let name: String
    public let value: AttributeValue
}

/// A file of tensors: NPY (one tensor), NPZ (members) or HDF5 (datasets).
protocol TensorContainer: AnyObject {
    var file: String { get }
    var formatName: String { get }
    var tensors: [StoredTensor] { get }
    /// Every attribute (HDF5: of the root, groups and datasets; safetensors: `__metadata__`), for `info`.
    var attributes: [Attribute] { get }
    /// A root attribute by name (HDF5 `/`, safetensors `__metadata__`): what the commands use.
    func rootAttribute(_ name: String) -> AttributeValue?
}

extension TensorContainer {
    func rootAttribute(_ name: String) -> AttributeValue? {
        attributes.first { $0.owner == "/" && $0.name == name }?.value
    }
}

/// The message for a tensor whose element type cannot be attention, with a hint for raw 2-byte data.
func unsupportedDtype(_ element: TensorElement) -> String {
    let hint: String
    switch element {
    case .unsupported("void16 (raw bytes)"), .unsupported("opaque16"), .unsupported("bitfield16"):
        hint = "; if it holds bfloat16, add --dtype bfloat16"
    default:
        hint = ""
    }
    return "unsupported dtype \(element): expected float16, bfloat16, float32 or float64" + hint
}
