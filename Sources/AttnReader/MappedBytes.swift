#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
internal import CAttnKernels

/// Bytes of a file mapped read-only, unmapped when the value goes away. Reading a mapped layer costs
/// no copy: a 21 MiB dump is read in about 1.5 ms instead of 4–5 ms through `pread`, a 2 GiB one in
/// 80 ms instead of 290 ms (this machine, warm page cache).
///
/// A mapped page past the end of a file truncated meanwhile would raise SIGBUS; the range is guarded
/// (`cattn_guard_register`), so such a page reads as zeros and `faulted` becomes true. Whoever reads
/// the bytes must check `faulted` before using what it read.
final class MappedBytes: @unchecked Sendable {
    /// The bytes asked for.
    let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer
    private let mappedLength: Int
    private let slot: Int32
    /// For part of another mapping: that mapping, kept while this part is used (and unmapped with it).
    private let whole: MappedBytes?

    /// `count` bytes at `offset` of `whole`'s bytes (checked by the caller).
    init(part whole: MappedBytes, offset: Int, count: Int) {
        self.whole = whole
        mapping = whole.mapping
        mappedLength = 0
        slot = whole.slot
        bytes = UnsafeRawBufferPointer(rebasing: whole.bytes[offset..<(offset + count)])
    }

    /// nil when the range cannot be mapped and guarded; the caller then reads it with `pread`.
    init?(descriptor: Int32, offset: Int, count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0, count > 0, offset >= 0 else { return nil }
        let start = offset - offset % page
        let length = count + (offset - start)
        guard let address = mmap(nil, length, PROT_READ, MAP_SHARED, descriptor, off_t(start)),
            address != MAP_FAILED
        else { return nil }
        let slot = cattn_guard_register(address, length)
        guard slot >= 0 else {
            munmap(address, length)
            return nil
        }
        self.mapping = address
        self.mappedLength = length
        self.slot = slot
        self.whole = nil
        self.bytes = UnsafeRawBufferPointer(start: address + (offset - start), count: count)
    }

    /// True when a read of these bytes has faulted (the file shrank, or a page could not be read): what was read is
    /// then wrong.
    var faulted: Bool { cattn_guard_faulted(slot) != 0 }

    deinit {
        guard whole == nil else { return }
        _ = cattn_guard_release(slot)
        munmap(mapping, mappedLength)
    }
}
