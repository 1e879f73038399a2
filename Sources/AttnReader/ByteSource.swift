import AttnCore

/// Random-access bytes: a region of a file, or an inflated zip member.
protocol ByteSource: AnyObject {
    var length: Int { get }
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws
}

/// A region of a read-only file.
final class FileRegion: ByteSource {
    let file: ReadOnlyFile
    let base: Int
    let length: Int
    let dataset: String?

    init(file: ReadOnlyFile, base: Int, length: Int, dataset: String?) {
        self.file = file
        self.base = base
        self.length = length
        self.dataset = dataset
    }

    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard offset >= 0, buffer.count <= length - offset else {
            throw AttnError(
                file: file.path, dataset: dataset,
                "data is truncated: expected \(buffer.count) bytes at offset \(offset) of \(length)")
        }
        try file.read(at: base + offset, into: buffer, dataset: dataset)
    }
}
