import AttnCore

/// A value built by `RestrictedPickle`: only what `torch.save` writes for tensors and containers of them.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    case real(Double)
    case string(String)
    case tuple([PickleValue])
    /// A list or a dict: mutable after it is made (APPEND, SETITEM), so shared by reference as the memo shares it.
    case list(PickleBox)
    case dict(PickleBox)
    /// An allowed global (`torch.FloatStorage`, `torch._utils._rebuild_tensor_v2`, `collections.OrderedDict`).
    case global(PickleGlobal)
    /// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location, numel)`.
    case storage(PickleStorage)
    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`, never called: recorded.
    case tensor(PickleTensor)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .real: return "a float"
        case .string: return "a string"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let g): return "the global \(g.qualifiedName)"
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        }
    }
}

/// A list's items, or a dict's pairs in insertion order.
final class PickleBox {
    var items: [PickleValue] = []
    var pairs: [(key: PickleValue, value: PickleValue)] = []
}

/// The globals a `torch.save` file may name: what rebuilds a tensor and what names a storage's element type.
enum PickleGlobal: Equatable {
    case rebuildTensor
    case orderedDict
    case storage(TorchStorageType)

    var qualifiedName: String {
        switch self {
        case .rebuildTensor: return "torch._utils._rebuild_tensor_v2"
        case .orderedDict: return "collections.OrderedDict"
        case .storage(let t): return "torch.\(t.rawValue)"
        }
    }

    /// The allow-list. Anything else (`posix.system`, `builtins.exec`, another torch function) is refused by name.
    init?(module: String, name: String) {
        switch (module, name) {
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensor
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch", _):
            guard let type = TorchStorageType(rawValue: name) else { return nil }
            self = .storage(type)
        default: return nil
        }
    }
}

/// The storage classes `torch.save` names, one per element type.
enum TorchStorageType: String {
    case FloatStorage, HalfStorage, BFloat16Storage, DoubleStorage
    case LongStorage, IntStorage, ShortStorage, CharStorage, ByteStorage, BoolStorage

    /// Bytes per element.
    var size: Int {
        switch self {
        case .DoubleStorage, .LongStorage: return 8
        case .FloatStorage, .IntStorage: return 4
        case .HalfStorage, .BFloat16Storage, .ShortStorage: return 2
        case .CharStorage, .ByteStorage, .BoolStorage: return 1
        }
    }

    var floating: ElementType? {
        switch self {
        case .FloatStorage: return .float32
        case .HalfStorage: return .float16
        case .BFloat16Storage: return .bfloat16
        case .DoubleStorage: return .float64
        default: return nil
        }
    }

    /// torch's name for the element type (`float32`, `int64`, `bool`), as `info` shows it.
    var dtypeName: String {
        switch self {
        case .FloatStorage: return "float32"
        case .HalfStorage: return "float16"
        case .BFloat16Storage: return "bfloat16"
        case .DoubleStorage: return "float64"
        case .LongStorage: return "int64"
        case .IntStorage: return "int32"
        case .ShortStorage: return "int16"
        case .CharStorage: return "int8"
        case .ByteStorage: return "uint8"
        case .BoolStorage: return "bool"
        }
    }

    var signed: Bool { self != .ByteStorage && self != .BoolStorage }
}

struct PickleStorage {
    let type: TorchStorageType
    /// The record under `data/` that holds the bytes.
    let key: String
    let elementCount: Int
}

struct PickleTensor {
    let storage: PickleStorage
    let offset: Int
    let shape: [Int]
    let strides: [Int]
}

/// A pickle reader that executes nothing. It knows the opcodes `torch.save` emits (protocols 2 to 5) for tensors
/// and containers of them, and the allow-listed globals of `PickleGlobal`; REDUCE is applied only to those, and
/// only as a record (a tensor's storage, offset, shape and strides; an empty `OrderedDict`). Any other opcode,
/// global or call is refused with what it was, before anything else is read. Nesting, sizes and integers are
/// bounded, so a hostile pickle costs at most its own length in time and memory.
struct RestrictedPickle {
    private let bytes: [UInt8]
    private let fail: (String) -> AttnError
    private var position = 0
    /// Each value with how deeply tuples nest in it (lists and dicts count 0 here: `TorchContainer` bounds their
    /// nesting when it walks them).
    private var stack: [(value: PickleValue, depth: Int)] = []
    private var marks: [Int] = []
    private var memo: [Int: (value: PickleValue, depth: Int)] = [:]
    /// Every list and dict made, emptied when reading ends: a cycle or a long chain of them is then released
    /// without recursion.
    private var boxes: [PickleBox] = []

    /// Containers nested deeper than this are refused (a tensor dump needs three or four levels).
    static let maximumDepth = 64
    /// At most this many values on the stack, and this many memo entries: a dump of a few thousand tensors needs
    /// some tens of thousands.
    static let maximumValues = 1 << 20

    private func tooMany() -> AttnError {
        fail(
            "holds more than \(Self.maximumValues) values on its stack or in its memo: expected a few containers"
        )
    }

    /// Reads `bytes` (a whole `data.pkl`) to its STOP and passes the value it builds to `body`. The value's lists
    /// and dicts are emptied when `body` returns.
    static func read<T>(
        _ bytes: [UInt8], fail: @escaping (String) -> AttnError, _ body: (PickleValue) throws -> T
    ) throws -> T {
        var reader = RestrictedPickle(bytes: bytes, fail: fail)
        defer {
            for box in reader.boxes {
                box.items.removeAll()
                box.pairs.removeAll()
            }
        }
        return try body(try reader.run())
    }

    private init(bytes: [UInt8], fail: @escaping (String) -> AttnError) {
        self.bytes = bytes
        self.fail = fail
    }

    private mutating func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - position else {
            throw fail("is truncated: expected \(n) bytes of \(what) at offset \(position)")
        }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    private mutating func unsigned(_ n: Int, _ what: String) throws -> UInt64 {
        try take(n, what).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    private mutating func line(_ what: String) throws -> String {
        guard let end = bytes[position...].prefix(256).firstIndex(of: 0x0A) else {
            throw fail("is corrupt: expected \(what) ending in a newline at offset \(position)")
        }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    private mutating func popEntry(_ opcode: String) throws -> (value: PickleValue, depth: Int) {
        guard stack.count > (marks.last ?? 0), let entry = stack.popLast() else {
            throw fail("is corrupt: \(opcode) at offset \(position - 1) finds the stack empty")
        }
        return entry
    }

    private mutating func pop(_ opcode: String) throws -> PickleValue { try popEntry(opcode).value }

    /// The values pushed since the last MARK, which is removed.
    private mutating func popToMark(_ opcode: String) throws -> [(value: PickleValue, depth: Int)] {
        guard let mark = marks.popLast() else {
            throw fail("is corrupt: \(opcode) at offset \(position - 1) has no MARK before it")
        }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private mutating func push(_ value: PickleValue, depth: Int = 0) throws {
        guard stack.count < Self.maximumValues else { throw tooMany() }
        guard depth <= Self.maximumDepth else {
            throw fail("nests tuples more than \(Self.maximumDepth) deep: expected tensors in containers")
        }
        stack.append((value, depth))
    }

    private mutating func pushTuple(_ entries: [(value: PickleValue, depth: Int)]) throws {
        try push(.tuple(entries.map(\.value)), depth: 1 + (entries.map(\.depth).max() ?? 0))
    }

    private mutating func string(_ count: UInt64) throws -> String {
        guard count <= UInt64(bytes.count - position) else {
            throw fail("is truncated: a string of \(count) bytes runs past its end")
        }
        let raw = try take(Int(count), "a string")
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw fail("is corrupt: a string at offset \(position - Int(count)) is not UTF-8")
        }
        return text
    }

    private mutating func memoize(_ index: Int) throws {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else {
            throw fail("is corrupt: a memo store finds the stack empty")
        }
        guard index >= 0, index <= bytes.count else { throw fail("is corrupt: memo index \(index)") }
        guard memo.count < Self.maximumValues || memo[index] != nil else { throw tooMany() }
        memo[index] = top
    }

    private mutating func recall(_ index: Int) throws {
        guard let entry = memo[index] else {
            throw fail("is corrupt: it recalls memo entry \(index), which was never stored")
        }
        guard stack.count < Self.maximumValues else { throw tooMany() }
        stack.append(entry)
    }

    private mutating func newBox() -> PickleBox {
        let box = PickleBox()
        boxes.append(box)
        return box
    }

    private mutating func run() throws -> PickleValue {
        while true {
            let at = position
            let opcode = try take(1, "an opcode")[at]
            switch opcode {
            case 0x80:  // PROTO
                let version = try take(1, "the protocol")[at + 1]
                guard (2...5).contains(version) else {
                    throw fail("uses pickle protocol \(version): expected 2 to 5, as torch.save writes")
                }
            case 0x95: _ = try take(8, "a frame length")  // FRAME: a hint for buffered readers
            case UInt8(ascii: "."):  // STOP
                guard marks.isEmpty else { throw fail("is corrupt: it stops inside a MARK") }
                guard stack.count == 1 else {
                    throw fail("is corrupt: it stops with \(stack.count) values on the stack, expected 1")
                }
                return stack[0].value
            case UInt8(ascii: "("): marks.append(stack.count)  // MARK
            case UInt8(ascii: "N"): try push(.none)
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case UInt8(ascii: "K"): try push(.int(Int64(try unsigned(1, "BININT1"))))
            case UInt8(ascii: "M"): try push(.int(Int64(try unsigned(2, "BININT2"))))
            case UInt8(ascii: "J"): try push(.int(Int64(Int32(truncatingIfNeeded: try unsigned(4, "BININT")))))
            case 0x8A, 0x8B:  // LONG1, LONG4: little-endian two's complement of n bytes
                let n = Int(try unsigned(opcode == 0x8A ? 1 : 4, "a long's length"))
                guard n <= 8 else {
                    throw fail("holds an integer of \(n) bytes at offset \(at): expected at most 8")
                }
                let raw = try take(n, "a long")
                var value: UInt64 = 0
                for (i, b) in raw.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
                if n > 0 && n < 8 && raw.last! & 0x80 != 0 { value |= ~((1 << UInt64(8 * n)) - 1) }
                try push(.int(Int64(bitPattern: value)))
            case UInt8(ascii: "G"):  // BINFLOAT, big-endian
                try push(.real(Double(bitPattern: try take(8, "a float").reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case UInt8(ascii: "X"): try push(.string(try string(try unsigned(4, "a string length"))))
            case 0x8C: try push(.string(try string(try unsigned(1, "a string length"))))
            case 0x8D: try push(.string(try string(try unsigned(8, "a string length"))))
            case UInt8(ascii: ")"): try push(.tuple([]))
            case UInt8(ascii: "t"): try pushTuple(try popToMark("TUPLE"))
            case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
                var items: [(value: PickleValue, depth: Int)] = []
                for _ in 0..<Int(opcode - 0x84) { items.insert(try popEntry("TUPLE\(opcode - 0x84)"), at: 0) }
                try pushTuple(items)
            case UInt8(ascii: "]"): try push(.list(newBox()))
            case UInt8(ascii: "l"):  // LIST
                let box = newBox()
                box.items = try popToMark("LIST").map(\.value)
                try push(.list(box))
            case UInt8(ascii: "a"), UInt8(ascii: "e"):  // APPEND, APPENDS
                let items = opcode == UInt8(ascii: "a") ? [try pop("APPEND")] : try popToMark("APPENDS").map(\.value)
                guard case .list(let box) = try pop("APPEND") else {
                    throw fail("is corrupt: APPEND at offset \(at) to something that is not a list")
                }
                box.items += items
                stack.append((.list(box), 0))
            case UInt8(ascii: "}"): try push(.dict(newBox()))
            case UInt8(ascii: "d"), UInt8(ascii: "s"), UInt8(ascii: "u"):  // DICT, SETITEM, SETITEMS
                let items: [PickleValue]
                if opcode == UInt8(ascii: "s") {
                    let value = try pop("SETITEM")
                    items = [try pop("SETITEM"), value]
                } else {
                    items = try popToMark(opcode == UInt8(ascii: "d") ? "DICT" : "SETITEMS").map(\.value)
                }
                guard items.count % 2 == 0 else {
                    throw fail("is corrupt: a dict at offset \(at) has a key without a value")
                }
                let box: PickleBox
                if opcode == UInt8(ascii: "d") {
                    box = newBox()
                } else {
                    guard case .dict(let target) = try pop("SETITEM") else {
                        throw fail("is corrupt: SETITEM at offset \(at) on something that is not a dict")
                    }
                    box = target
                }
                for i in stride(from: 0, to: items.count, by: 2) { box.pairs.append((items[i], items[i + 1])) }
                stack.append((.dict(box), 0))
            case UInt8(ascii: "q"): try memoize(Int(try unsigned(1, "a memo index")))
            case UInt8(ascii: "r"): try memoize(Int(try unsigned(4, "a memo index")))
            case 0x94: try memoize(memo.count)  // MEMOIZE
            case UInt8(ascii: "h"): try recall(Int(try unsigned(1, "a memo index")))
            case UInt8(ascii: "j"): try recall(Int(try unsigned(4, "a memo index")))
            case UInt8(ascii: "c"):  // GLOBAL module\nname\n
                try push(.global(try allowed(module: try line("a module name"), name: try line("a global name"))))
            case 0x93:  // STACK_GLOBAL
                guard case .string(let name) = try pop("STACK_GLOBAL"),
                    case .string(let module) = try pop("STACK_GLOBAL")
                else { throw fail("is corrupt: STACK_GLOBAL at offset \(at) without two strings") }
                try push(.global(try allowed(module: module, name: name)))
            case UInt8(ascii: "Q"):  // BINPERSID
                try push(.storage(try storage(try pop("BINPERSID"))))
            case UInt8(ascii: "R"):  // REDUCE
                let arguments = try pop("REDUCE")
                guard case .global(let callable) = try pop("REDUCE"), case .tuple(let args) = arguments else {
                    throw fail(
                        "calls something other than an allowed global at offset \(at): attninspect calls nothing")
                }
                try push(try reduce(callable, args))
            default:
                throw fail(
                    """
                    holds pickle opcode \(describe(opcode)) at offset \(at), which torch.save does not \
                    write for tensors: attninspect reads only tensors, lists, tuples, dicts, strings and numbers
                    """
                )
            }
        }
    }

    private func allowed(module: String, name: String) throws -> PickleGlobal {
        guard let global = PickleGlobal(module: module, name: name) else {
            throw fail(
                """
                names the Python global \(module).\(name), which is not a tensor or a container of \
                tensors; attninspect runs nothing from a pickle and reads only tensors, lists, tuples, dicts, \
                strings and numbers
                """
            )
        }
        return global
    }

    private func describe(_ opcode: UInt8) -> String {
        let names: [UInt8: String] = [
            0x62: "BUILD", 0x69: "INST", 0x6F: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x50: "PERSID",
            0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x8E: "BINBYTES8", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER",
            0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x63: "GLOBAL", 0x53: "STRING",
            0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x46: "FLOAT", 0x49: "INT", 0x4C: "LONG"
        ]
        let hexCode = String(opcode, radix: 16)
        return (names[opcode].map { "\($0) " } ?? "") + "(0x" + (hexCode.count == 1 ? "0" : "") + hexCode + ")"
    }

    /// A persistent id: `('storage', storage type, key, location, element count)`.
    private func storage(_ id: PickleValue) throws -> PickleStorage {
        guard case .tuple(let fields) = id, fields.count == 5, case .string("storage") = fields[0],
            case .global(.storage(let type)) = fields[1], case .string(let key) = fields[2],
            case .string = fields[3], case .int(let count) = fields[4], count >= 0, count <= Int64(Int32.max) << 16
        else {
            throw fail(
                """
                holds a persistent id that is not a storage: expected ('storage', a torch storage type, \
                key, location, element count) as torch.save writes
                """
            )
        }
        guard !key.isEmpty, key.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw fail("names a storage record \"\(key)\": expected a number, as torch.save writes")
        }
        return PickleStorage(type: type, key: key, elementCount: Int(count))
    }

    private mutating func reduce(_ callable: PickleGlobal, _ args: [PickleValue]) throws -> PickleValue {
        switch callable {
        case .orderedDict:
            guard args.isEmpty else {
                throw fail("builds an OrderedDict from arguments: expected OrderedDict() then its items")
            }
            return .dict(newBox())
        case .rebuildTensor:
            guard (6...7).contains(args.count), case .storage(let storage) = args[0], case .int(let offset) = args[1],
                offset >= 0, offset <= Int64(1) << 48,
                let shape = integers(args[2]), let strides = integers(args[3]), shape.count == strides.count,
                case .bool = args[4]
            else {
                throw fail(
                    """
                    rebuilds a tensor from unexpected arguments: expected (storage, offset, size, stride, \
                    requires_grad, hooks) as torch.save writes
                    """
                )
            }
            if case .dict(let hooks) = args[5], !hooks.pairs.isEmpty {
                throw fail("saves a tensor with backward hooks: expected a plain tensor")
            }
            return .tensor(PickleTensor(storage: storage, offset: Int(offset), shape: shape, strides: strides))
        case .storage(let type):
            throw fail("calls torch.\(type.rawValue) to build a storage: expected it only as a storage type")
        }
    }

    private func integers(_ value: PickleValue) -> [Int]? {
        guard case .tuple(let items) = value, items.count <= 32 else { return nil }
        var out: [Int] = []
        for item in items {
            guard case .int(let v) = item, v >= 0, v <= Int64(1) << 48 else { return nil }
            out.append(Int(v))
        }
        return out
    }
}
