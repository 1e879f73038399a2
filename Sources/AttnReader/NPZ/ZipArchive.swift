import AttnCore

/// The central directory of a zip archive (as `np.savez` and `np.savez_compressed` write them),
/// zip64 included. Only the directory is read here; member data is read on demand.
struct ZipArchive {
    struct Entry {
        let name: String
        /// 0 = stored, 8 = deflate.
        let method: UInt16
        let compressedSize: Int
        let uncompressedSize: Int
        let localHeaderOffset: Int
        let flags: UInt16
        /// CRC-32 of the uncompressed bytes.
        let crc: UInt32
    }

    let entries: [Entry]

    static func isZip(prefix: [UInt8]) -> Bool {
        prefix.count >= 4 && prefix[0] == 0x50 && prefix[1] == 0x4B
            && (prefix[2] == 3 && prefix[3] == 4 || prefix[2] == 5 && prefix[3] == 6)
    }

    init(file: ReadOnlyFile) throws {
        let path = file.path
        func fail(_ message: String) -> AttnError { AttnError(file: path, message) }
        // The end-of-central-directory record is in the last 22 + 65535 bytes.
        let tailLength = min(file.size, 22 + 65535)
        let tail = try file.bytes(at: file.size - tailLength, count: tailLength)
        var eocd = -1
        var i = tail.count - 22
        while i >= 0 {
            if tail[i] == 0x50 && tail[i + 1] == 0x4B && tail[i + 2] == 0x05 && tail[i + 3] == 0x06 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else {
            throw fail(
                "not a complete NPZ (zip) archive: no end-of-central-directory record; the file may be truncated")
        }
        var cursor = ByteCursor(tail, file: path, context: "zip end record", position: eocd + 4)
        _ = try cursor.uint16("disk number")
        _ = try cursor.uint16("directory disk")
        _ = try cursor.uint16("entries on disk")
        var entryCount = Int(try cursor.uint16("entry count"))
        var directorySize = Int(try cursor.uint32("directory size"))
        var directoryOffset = Int(try cursor.uint32("directory offset"))
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // zip64: a locator sits just before the end record and points at the zip64 end record.
            guard eocd >= 20 else { throw fail("corrupt zip64 archive: no zip64 locator before the end record") }
            var loc = ByteCursor(tail, file: path, context: "zip64 locator", position: eocd - 20)
            guard try loc.uint32("signature") == 0x0706_4B50 else {
                throw fail("corrupt zip64 archive: bad zip64 locator signature")
            }
            _ = try loc.uint32("disk")
            let recordOffset = Int(clamping: try loc.uint64("zip64 end record offset"))
            guard recordOffset >= 0, recordOffset <= file.size - 56 else {
                throw fail("corrupt zip64 archive: zip64 end record offset \(recordOffset) is outside the file")
            }
            var rec = ByteCursor(try file.bytes(at: recordOffset, count: 56), file: path, context: "zip64 end record")
            guard try rec.uint32("signature") == 0x0606_4B50 else {
                throw fail("corrupt zip64 archive: bad zip64 end record signature")
            }
            try rec.skip(8 + 2 + 2 + 4 + 4 + 8)
            entryCount = Int(clamping: try rec.uint64("entry count"))
            directorySize = Int(clamping: try rec.uint64("directory size"))
            directoryOffset = Int(clamping: try rec.uint64("directory offset"))
        }
        guard directoryOffset >= 0, directorySize >= 0, directorySize <= file.size,
            directoryOffset <= file.size - directorySize
        else {
            throw fail(
                """
                zip archive is truncated or corrupt: central directory at \(directoryOffset) (+\(directorySize) \
                bytes) is outside the \(file.size)-byte file
                """
            )
        }
        guard entryCount <= directorySize / 46 else {
            throw fail("corrupt zip archive: \(entryCount) entries cannot fit a \(directorySize)-byte directory")
        }
        var dir = ByteCursor(
            try file.bytes(at: directoryOffset, count: directorySize), file: path, context: "zip central directory")
        var entries: [Entry] = []
        for _ in 0..<entryCount {
            guard try dir.uint32("entry signature") == 0x0201_4B50 else {
                throw fail("corrupt zip archive: bad central directory entry signature")
            }
            try dir.skip(4)
            let flags = try dir.uint16("flags")
            let method = try dir.uint16("method")
            try dir.skip(4)  // time, date
            let crc = try dir.uint32("crc-32")
            var compressed = Int(try dir.uint32("compressed size"))
            var uncompressed = Int(try dir.uint32("uncompressed size"))
            let nameLength = Int(try dir.uint16("name length"))
            let extraLength = Int(try dir.uint16("extra length"))
            let commentLength = Int(try dir.uint16("comment length"))
            try dir.skip(2 + 2 + 4)
            var localOffset = Int(try dir.uint32("local header offset"))
            let name = String(decoding: try dir.take(nameLength, "entry name"), as: UTF8.self)
            var extra = ByteCursor(
                Array(try dir.take(extraLength, "extra field")), file: path, context: "zip extra field of '\(name)'")
            while extra.remaining >= 4 {
                let id = try extra.uint16("extra id")
                let size = Int(try extra.uint16("extra size"))
                var field = ByteCursor(
                    Array(try extra.take(size, "extra data")), file: path, context: "zip64 field of '\(name)'")
                if id == 0x0001 {
                    if uncompressed == 0xFFFF_FFFF {
                        uncompressed = Int(clamping: try field.uint64("uncompressed size"))
                    }
                    if compressed == 0xFFFF_FFFF { compressed = Int(clamping: try field.uint64("compressed size")) }
                    if localOffset == 0xFFFF_FFFF {
                        localOffset = Int(clamping: try field.uint64("local header offset"))
                    }
                }
            }
            try dir.skip(commentLength, "entry comment")
            entries.append(
                Entry(
                    name: name, method: method, compressedSize: compressed, uncompressedSize: uncompressed,
                    localHeaderOffset: localOffset, flags: flags, crc: crc))
        }
        self.entries = entries
    }

    /// The offset of an entry's data, after its local header.
    static func dataOffset(of entry: Entry, in file: ReadOnlyFile) throws -> Int {
        guard entry.localHeaderOffset >= 0, entry.localHeaderOffset <= file.size - 30 else {
            throw AttnError(
                file: file.path, dataset: entry.name,
                "zip archive is truncated: member header at \(entry.localHeaderOffset) is outside the file")
        }
        var local = ByteCursor(
            try file.bytes(at: entry.localHeaderOffset, count: 30), file: file.path,
            context: "zip member header of '\(entry.name)'")
        guard try local.uint32("signature") == 0x0403_4B50 else {
            throw AttnError(file: file.path, dataset: entry.name, "corrupt zip archive: bad member header signature")
        }
        try local.skip(22)
        let nameLength = Int(try local.uint16("name length"))
        let extraLength = Int(try local.uint16("extra length"))
        let offset = entry.localHeaderOffset + 30 + nameLength + extraLength
        guard entry.compressedSize >= 0, offset <= file.size, entry.compressedSize <= file.size - offset else {
            throw AttnError(
                file: file.path, dataset: entry.name,
                """
                zip archive is truncated: member data (\(entry.compressedSize) bytes at \(offset)) runs past the \
                end of the \(file.size)-byte file
                """
            )
        }
        return offset
    }
}
