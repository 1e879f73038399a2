internal import CAttnDeflate
import AttnCore

/// A zip member stored without compression, read in place. Reads that extend the verified
/// prefix from its start update a running CRC-32; once the whole member has been read in
/// order (as layer-by-layer analysis does), the CRC recorded in the archive is checked.
final class StoredMember: ByteSource {
    let length: Int
    private let region: FileRegion
    private let member: String
    private let expectedCRC: UInt32
    private var checksum = MemberChecksum()
    private var verified = 0  // bytes [0, verified) are covered by `checksum`

    init(file: ReadOnlyFile, member: String, offset: Int, length: Int, crc: UInt32) {
        self.region = FileRegion(file: file, base: offset, length: length, dataset: member)
        self.member = member
        self.length = length
        self.expectedCRC = crc
    }

    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try region.read(at: offset, into: buffer)
        let end = offset + buffer.count
        guard offset <= verified, end > verified else { return }
        checksum.add(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[(verified - offset)...]))
        verified = end
        if verified == length { try checksum.verify(expectedCRC, file: region.file.path, member: member) }
    }
}

/// A running CRC-32 (zip's). The corresponding C call is `libdeflate_crc32` (PCLMUL-accelerated,
/// several times faster than zlib's `crc32`).
struct MemberChecksum {
    private(set) var value: UInt32 = 0

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        value = libdeflate_crc32(value, base, bytes.count)
    }

    /// Throws when the CRC of the whole member differs from the one the archive records.
    func verify(_ expected: UInt32, file: String, member: String) throws {
        guard value == expected else {
            throw AttnError(
                file: file, dataset: member,
                "member is corrupt: its CRC-32 is \(hex(value)), expected \(hex(expected)) as the archive records")
        }
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
