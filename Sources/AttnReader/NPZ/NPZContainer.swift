import AttnCore

/// An `.npz` archive (`np.savez`, `np.savez_compressed`): members are `.npy` arrays addressed
/// by name without the `.npy` suffix. Stored members are read in place; deflated ones are
/// inflated as a stream, never whole.
final class NPZContainer: TensorContainer {
    let file: String
    let formatName: String
    let tensors: [StoredTensor]
    let attributes: [Attribute] = []

    init(file: ReadOnlyFile, archive: ZipArchive) throws {
        self.file = file.path
        var tensors: [StoredTensor] = []
        var compressed = false
        for entry in archive.entries where !entry.name.hasSuffix("/") {
            let name = entry.name.hasSuffix(".npy") ? String(entry.name.dropLast(4)) : entry.name
            guard entry.flags & 1 == 0 else {
                throw AttnError(
                    file: file.path, dataset: name, "member is encrypted: expected a plain np.savez archive")
            }
            let offset = try ZipArchive.dataOffset(of: entry, in: file)
            let source: ByteSource
            switch entry.method {
            case 0:
                guard entry.compressedSize == entry.uncompressedSize else {
                    throw AttnError(
                        file: file.path, dataset: name,
                        """
                        corrupt zip archive: stored member sizes differ (\(entry.compressedSize) vs \
                        \(entry.uncompressedSize))
                        """
                    )
                }
                source = StoredMember(
                    file: file, member: name, offset: offset, length: entry.uncompressedSize, crc: entry.crc)
            case 8:
                compressed = true
                // Deflate cannot shrink data more than about 1032:1: a member claiming more is corrupt (or a bomb),
                // refused before anything is inflated.
                guard entry.uncompressedSize / 1032 <= entry.compressedSize + 64 else {
                    throw AttnError(
                        file: file.path, dataset: name,
                        """
                        claims \(entry.uncompressedSize) bytes inflated from \(entry.compressedSize) compressed, \
                        more than deflate can expand (1032:1): the archive is corrupt
                        """
                    )
                }
                source = try InflatedMember(
                    file: file, member: name, compressedOffset: offset,
                    compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize, crc: entry.crc)
            default:
                throw AttnError(
                    .unsupported, file: file.path, dataset: name,
                    "unsupported zip compression method \(entry.method): expected stored (0) or deflate (8)")
            }
            tensors.append(try NPYTensor(name: name, source: source, file: file.path, errorDataset: name))
        }
        self.tensors = tensors
        formatName = compressed ? "NPZ (zip, deflate)" : "NPZ (zip, stored)"
    }
}
