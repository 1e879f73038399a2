internal import CAttnZlib
import AttnCore

/// A deflated zip member read as a stream: reads move forward through the inflated bytes, and memory stays
/// bounded by the read buffers, whatever the member's size. A read behind the current position that lies within the
/// first 64 KiB (the header) restarts the stream; the first one further in (layers read last to first, or a
/// Fortran-order array
/// gathered layer by layer) inflates the whole member once into memory,
/// when it fits the memory budget, and every later read is served from there; a member too large for that is
/// refused with a hint instead of being inflated again from the start for every read. The corresponding C calls
/// are `inflateInit2_`, `inflate`, `inflateReset` and `inflateEnd`.
final class InflatedMember: ByteSource {
    let length: Int
    private let file: ReadOnlyFile
    private let member: String
    private let compressedOffset: Int
    private let compressedSize: Int
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutablePointer<UInt8>
    private var inputConsumed = 0  // compressed bytes handed to zlib so far
    private var position = 0  // uncompressed bytes produced so far
    private var finished = false
    private var checksum = MemberChecksum()
    private let expectedCRC: UInt32
    /// The whole member, inflated, once a read has gone backwards.
    private var whole: [UInt8]?
    private static let inputChunk = 256 << 10
    /// A read behind the position that ends before this offset (the array's header again) restarts the stream instead.
    private static let cheapRestart = 64 << 10

    init(
        file: ReadOnlyFile, member: String, compressedOffset: Int, compressedSize: Int, uncompressedSize: Int,
        crc: UInt32
    ) throws {
        self.file = file
        self.member = member
        self.compressedOffset = compressedOffset
        self.compressedSize = compressedSize
        self.length = uncompressedSize
        self.expectedCRC = crc
        self.input = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.inputChunk)
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard cattn_inflate_init_raw(stream) == Z_OK else {
            stream.deallocate()
            input.deallocate()
            throw AttnError(file: file.path, dataset: member, "zlib could not start inflating")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        input.deallocate()
    }

    private func restart() {
        inflateReset(stream)
        inputConsumed = 0
        position = 0
        finished = false
        checksum = MemberChecksum()
        stream.pointee.avail_in = 0
    }

    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard offset >= 0, buffer.count <= length - offset else {
            throw AttnError(
                file: file.path, dataset: member,
                "data is truncated: expected \(buffer.count) bytes at offset \(offset) of \(length)")
        }
        if offset < position && offset + buffer.count <= Self.cheapRestart && whole == nil {
            restart()  // the header read again: inflating up to it again costs little
        } else if offset < position || whole != nil {
            let bytes = try inflatedWhole()
            bytes.withUnsafeBytes {
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + buffer.count)]))
            }
            return
        }
        if offset > position {
            var scratch = [UInt8](repeating: 0, count: min(1 << 20, offset - position))
            while position < offset {
                let n = min(scratch.count, offset - position)
                try scratch.withUnsafeMutableBytes {
                    try produce(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]))
                }
            }
        }
        try produce(into: buffer)
    }

    /// The whole member inflated (once), or an error when that does not fit the memory budget.
    private func inflatedWhole() throws -> [UInt8] {
        if let whole { return whole }
        if let refusal = MemoryBudget.refusal(
            "inflating it whole (it is read out of order: layers last to first, or a Fortran-order array)",
            bytes: length)
        {
            throw AttnError(
                .resource, file: file.path, dataset: member,
                "is compressed, and \(refusal); save it uncompressed (np.savez or np.save, read in place) or in C order"
            )
        }
        restart()
        var bytes = [UInt8](repeating: 0, count: length)
        try bytes.withUnsafeMutableBytes { try produce(into: $0) }
        whole = bytes
        return bytes
    }

    /// Inflates exactly `out.count` bytes at the current position.
    private func produce(into out: UnsafeMutableRawBufferPointer) throws {
        var produced = 0
        while produced < out.count {
            if finished {
                throw AttnError(
                    file: file.path, dataset: member,
                    "compressed data ends early: expected \(length) bytes, found \(position)")
            }
            if stream.pointee.avail_in == 0 {
                let n = min(Self.inputChunk, compressedSize - inputConsumed)
                guard n > 0 else {
                    throw AttnError(
                        file: file.path, dataset: member,
                        "compressed data is truncated: expected \(length) bytes, inflated \(position)")
                }
                try file.read(
                    at: compressedOffset + inputConsumed, into: UnsafeMutableRawBufferPointer(start: input, count: n),
                    dataset: member)
                inputConsumed += n
                stream.pointee.next_in = input
                stream.pointee.avail_in = UInt32(n)
            }
            let want = min(out.count - produced, Int(UInt32.max))
            stream.pointee.next_out = (out.baseAddress! + produced).assumingMemoryBound(to: UInt8.self)
            stream.pointee.avail_out = UInt32(want)
            let status = inflate(stream, Z_NO_FLUSH)
            let made = want - Int(stream.pointee.avail_out)
            checksum.add(UnsafeRawBufferPointer(start: out.baseAddress! + produced, count: made))
            produced += made
            position += made
            if position == length { try checksum.verify(expectedCRC, file: file.path, member: member) }
            switch status {
            case Z_OK, Z_BUF_ERROR:
                continue
            case Z_STREAM_END:
                finished = true
            default:
                let reason = stream.pointee.msg.map { String(cString: $0) } ?? "error \(status)"
                throw AttnError(file: file.path, dataset: member, "corrupt compressed data (zlib: \(reason))")
            }
        }
    }
}
