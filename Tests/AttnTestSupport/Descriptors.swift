#if canImport(Glibc)
import Glibc
#endif

/// Reading pipes and /proc files to their end with poll(2) and read(2), retried when a signal interrupts
/// them. Foundation's `FileHandle.readDataToEndOfFile` ends the whole test process (a fatal error) when a
/// read fails with EINTR, which a child process ending meanwhile can cause; and reading two pipes one after
/// the other can wait forever when the child fills the second one first.
public enum Descriptors {
    /// Everything readable from each descriptor until it reports end of file, read concurrently.
    /// nil when a read fails with anything but EINTR or EAGAIN.
    public static func readAll(_ descriptors: [Int32]) -> [[UInt8]]? {
        var outputs = [[UInt8]](repeating: [], count: descriptors.count)
        var open = Set(descriptors.indices)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while !open.isEmpty {
            let order = open.sorted()
            var polled = order.map { pollfd(fd: descriptors[$0], events: Int16(POLLIN), revents: 0) }
            let ready = poll(&polled, nfds_t(polled.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return nil
            }
            for (slot, index) in order.enumerated() where polled[slot].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(descriptors[index], $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return nil
                }
                if n == 0 { open.remove(index) } else { outputs[index] += chunk[0..<n] }
            }
        }
        return outputs
    }

    /// The whole file at `path` (for /proc files, whose size reads as 0); nil when it cannot be read.
    public static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll([fd])?.first
    }
}
