import Testing
import AttnCore
@testable import AttnReader

/// Builds `.npy` bytes: magic, version, header length, the dict text padded to 64 bytes.
func npyBytes(_ dict: String, major: UInt8 = 1, pad: Bool = true, data: [UInt8] = []) -> [UInt8] {
    var header = Array(dict.utf8)
    let preamble = major == 1 ? 10 : 12
    if pad {
        let total = preamble + header.count + 1
        header += [UInt8](repeating: 0x20, count: (64 - total % 64) % 64) + [0x0A]
    }
    var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
    let n = header.count
    out +=
        major == 1
        ? [UInt8(n & 0xFF), UInt8(n >> 8)]
        : [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)]
    return out + header + data
}

func parse(_ bytes: [UInt8]) throws -> NPYHeader {
    try NPYHeader.parse(file: "x.npy", dataset: nil, length: bytes.count) { offset, count in
        guard offset + count <= bytes.count else { throw AttnError(file: "x.npy", "short read") }
        return Array(bytes[offset..<(offset + count)])
    }
}

@Suite("NPY header")
struct NPYHeaderTests {
    @Test("versions 1.0, 2.0 and 3.0 parse; the data starts after the padded header", arguments: [UInt8(1), 2, 3])
    func versions(major: UInt8) throws {
        let h = try parse(
            npyBytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", major: major,
                data: [UInt8](repeating: 0, count: 24)))
        #expect(h.shape == [2, 3] && h.itemSize == 4 && !h.fortranOrder && h.major == major)
        #expect(h.dataOffset % 64 == 0)
        #expect(h.element == .floating(.float32, .little))
    }

    @Test(
        "dtypes: float16/32/64 in both byte orders; others are named, not misread",
        arguments: [
            ("<f2", "float16"), (">f2", "float16"), ("<f8", "float64"), (">f4", "float32"), ("<i4", "int32"),
            ("<c8", "complex64"),
            ("|b1", "bool"), ("<u2", "uint16"), ("|V2", "void16 (raw bytes)"), ("<f16", "float128")
        ])
    func dtypes(descr: String, name: String) throws {
        let h = try parse(
            npyBytes(
                "{'descr': '\(descr)', 'fortran_order': False, 'shape': (4,), }", data: [UInt8](repeating: 0, count: 64)
            ))
        switch h.element {
        case .floating(let t, let order):
            #expect(t.rawValue == name)
            #expect(order == (descr.hasPrefix(">") ? .big : .little))
        case .unsupported(let s): #expect(s == name)
        case .integer(_, _, _, let s): #expect(s == name)  // read as integers for masks, never as attention
        default: Issue.record("unexpected \(h.element)")
        }
    }

    @Test("a scalar shape, a one-element tuple, Fortran order, keys in any order")
    func shapes() throws {
        #expect(
            try parse(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", data: [0, 0, 0, 0])).shape
                == [])
        #expect(
            try parse(
                npyBytes(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data: [UInt8](repeating: 0, count: 12))
            ).shape == [3])
        let f = try parse(
            npyBytes("{'shape': (1, 2), 'fortran_order': True, 'descr': '<f8'}", data: [UInt8](repeating: 0, count: 16))
        )
        #expect(f.fortranOrder && f.shape == [1, 2])
    }

    @Test(
        "malformed headers are refused with a reason",
        arguments: [
            ("{'descr': '<f4', 'fortran_order': False}", "expected exactly the keys"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unexpected value"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "unexpected value"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "expected an integer"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "'shape' is not a tuple"),
            ("{'descr': 4, 'fortran_order': False, 'shape': (2,)}", "unexpected value"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "duplicate key"),
            ("['descr']", "expected '{'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing", "unexpected text"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4)}", "overflows"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (100,)}", "needs 400 data bytes")
        ])
    func malformed(dict: String, reason: String) throws {
        do {
            _ = try parse(npyBytes(dict, data: [0, 0, 0, 0, 0, 0, 0, 0]))
            Issue.record("accepted: \(dict)")
        } catch let error as AttnError {
            #expect(error.description.contains(reason), "\(error)")
            #expect(error.file == "x.npy")
        }
    }

    @Test("bad preambles: wrong magic, unknown version, header longer than the file, over the size cap")
    func preambles() throws {
        var wrongMagic = npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0])
        wrongMagic[1] = 0x4D
        #expect(throws: AttnError.self) { try parse(wrongMagic) }
        var version4 = npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0])
        version4[6] = 4
        #expect(throws: AttnError.self) { try parse(version4) }
        let short = Array(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }").prefix(30))
        #expect(throws: AttnError.self) { try parse(short) }
        var huge: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 0, 0, 0, 0x7F]
        huge += [UInt8](repeating: 0x20, count: 64)
        #expect(throws: AttnError.self) { try parse(huge) }
    }
}
