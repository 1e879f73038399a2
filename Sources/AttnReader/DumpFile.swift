import AttnCore

/// A dump file of any supported format (NPY, NPZ, HDF5, safetensors, torch.save), opened read-only, with its tensors
/// and attributes listed. `AttentionLayout` decides which of them is the attention.
public final class DumpFile {
    /// The path as the user named it.
    public let path: String
    /// "NPY", "NPZ (zip, deflate)", "HDF5", ...
    public var format: String { container.formatName }
    /// Every tensor in the file: name, shape, element type, storage.
    public var tensors: [TensorInfo] { container.tensors.map(\.info) }
    /// Attributes of the root and of datasets (HDF5 only).
    public var attributes: [Attribute] { container.attributes }

    let container: TensorContainer

    private static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Opens `path`, deciding the format from its first bytes (not its extension). With
    /// `rawAs: .bfloat16`, raw 2-byte data (NPY `|V2`, HDF5 opaque or bitfield) is read as bfloat16.
    public convenience init(path: String, rawAs type: ElementType? = nil) throws {
        let base = try DumpFile.openContainer(path: path)
        if let type {
            self.init(path: path, container: ReinterpretedContainer(base: base, type: type))
        } else {
            self.init(path: path, container: base)
        }
    }

    private init(path: String, container: TensorContainer) {
        self.path = path
        self.container = container
    }

    private static func openContainer(path: String) throws -> TensorContainer {
        let container: TensorContainer
        let file = try ReadOnlyFile(path: path)
        let prefix = try file.bytes(at: 0, count: min(8, file.size))
        if prefix.count >= 6 && Array(prefix[0..<6]) == NPYHeader.magic {
            container = try NPYContainer(file: file)
        } else if ZipArchive.isZip(prefix: prefix) {
            let archive = try ZipArchive(file: file)
            if let folder = TorchContainer.folder(of: archive) {
                container = try TorchContainer(file: file, archive: archive, folder: folder)
            } else {
                container = try NPZContainer(file: file, archive: archive)
            }
        } else if prefix.count >= 2 && prefix[0] == 0x80 && (2...5).contains(prefix[1]) {
            // A bare pickle: torch.save's format before PyTorch 1.6 (or with _use_new_zipfile_serialization=False)
            // starts with its magic number, a long; anything else is some Python object.
            let legacy: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46]
            throw AttnError(
                .unsupported, file: path,
                prefix == legacy
                    ? """
                    is in torch.save's legacy format (before PyTorch 1.6, or _use_new_zipfile_serialization=False), \
                    a bare pickle that attninspect does not read; save it again with torch.save in PyTorch 1.6 or later
                    """
                    : """
                    is a Python pickle, which attninspect never unpickles (it can run code); save the tensors with \
                    torch.save, np.savez, safetensors or h5py
                    """)
        } else if SafetensorsContainer.looksLike(file) || path.lowercased().hasSuffix(".safetensors") {
            container = try SafetensorsContainer(file: file)
        } else if try Self.hasHDF5Signature(file) || path.hasSuffix(".h5") || path.hasSuffix(".hdf5") {
            container = try HDF5Container(path: path)
        } else if path.lowercased().hasSuffix(".npy") {
            throw AttnError(file: path, "not a valid .npy file: expected the magic bytes \\x93NUMPY at the start")
        } else if path.lowercased().hasSuffix(".npz") {
            throw AttnError(file: path, "not a valid .npz file: expected a zip archive (signature PK)")
        } else if file.size == 0 {
            throw AttnError(file: path, "file is empty: expected an NPY, NPZ, HDF5, safetensors or torch.save dump")
        } else {
            throw AttnError(
                file: path,
                """
                not an NPY, NPZ, HDF5, safetensors or torch.save file (unrecognised signature); expected a dump \
                written by numpy, h5py, safetensors or torch.save
                """
            )
        }
        return container
    }

    /// HDF5's signature sits at offset 0, or after a user block at 512, 1024, 2048, ... bytes.
    private static func hasHDF5Signature(_ file: ReadOnlyFile) throws -> Bool {
        var offset = 0
        while offset + 8 <= file.size {
            if try file.bytes(at: offset, count: 8) == hdf5Signature { return true }
            offset = offset == 0 ? 512 : offset * 2
        }
        return false
    }

    func tensor(named name: String) -> StoredTensor? {
        let wanted = name.hasPrefix("/") ? name : "/" + name
        return container.tensors.first { t in
            let n = t.name.hasPrefix("/") ? t.name : "/" + t.name
            return n == wanted
        }
    }

    /// The value of a root attribute (HDF5 `/`, safetensors `__metadata__`) by name: only the attributes asked for
    /// are read (a file may carry thousands). Attributes of datasets are shown by `info` but not used: what a file
    /// says about its attention (`patch_grid`, `prefix_tokens`, `num_heads`, `causal`, `scale`) is said on its root.
    public func attribute(_ name: String) -> AttributeValue? {
        container.rootAttribute(name)
    }

    /// Token labels from a `tokens` dataset or member (any path ending in `tokens`), if any. Labels shaped
    /// (batch, positions), as a batched export writes them, give the row of sample `sample` (default 0).
    public func tokenLabels(named names: [String] = ["tokens"], sample: Int? = nil) throws -> [String]? {
        guard let tensor = tensor(lastNamedIn: names, accepting: { $0.info.element == .text }) else { return nil }
        let labels = try tensor.readStrings()
        guard tensor.shape.count == 2, let positions = tensor.shape.last, positions > 0 else { return labels }
        let rows = labels.count / positions, row = rows == 1 ? 0 : (sample ?? 0)
        guard row < rows else {
            throw AttnError(
                file: path, dataset: tensor.label ?? tensor.name,
                "holds the labels of \(rows) samples, but sample \(row) was asked for")
        }
        return Array(labels[(row * positions)..<((row + 1) * positions)])
    }

    /// Why the file's token labels cannot be used, when it has a tensor named like them (`tokens`, or `names`) that
    /// is not text: nil when it has none, or text ones.
    public func unreadableTokenLabels(named names: [String] = ["tokens"]) -> String? {
        guard tensor(lastNamedIn: names, accepting: { $0.info.element == .text }) == nil,
            let other = tensor(lastNamedIn: names)
        else { return nil }
        let dataset = other.label.map { "'\($0)' " } ?? ""
        if other.info.element == .unsupported("object") {
            return
                """
                its token labels \(dataset)are an object array (pickled Python objects, which attninspect never \
                unpickles); save them as strings, e.g. np.array(tokens, dtype=str)
                """
        }
        return
            """
            its token labels \(dataset)have dtype \(other.info.element), not strings; save them as strings, e.g. \
            np.array(tokens, dtype=str)
            """
    }

    /// The first tensor whose last path component is one of `names` (in their order) and that `accepts`.
    func tensor(lastNamedIn names: [String], accepting accepts: (StoredTensor) -> Bool = { _ in true }) -> StoredTensor?
    {
        for name in names {
            if let t = container.tensors.first(where: { lastComponent($0.name) == name && accepts($0) }) { return t }
        }
        return nil
    }

    /// Token ids from a `token_ids` or `input_ids` tensor of any integer type: shape (positions,) or
    /// (batch, positions), the row of sample `sample` (default 0). nil when the file has none.
    public func tokenIDs(positions: Int, sample: Int?) throws -> [Int64]? {
        guard let tensor = tensor(lastNamedIn: ["token_ids", "input_ids"]) else { return nil }
        let values = try tensor.readIntegers()
        guard let last = tensor.shape.last, last == positions, positions > 0, values.count % positions == 0 else {
            throw AttnError(
                file: path, dataset: tensor.label ?? tensor.name,
                "expected one token id per position (\(positions)), found shape \(formatShape(tensor.shape))")
        }
        let rows = values.count / positions, row = rows == 1 ? 0 : (sample ?? 0)
        guard row < rows else {
            throw AttnError(
                file: path, dataset: tensor.label ?? tensor.name, "has \(rows) samples, but sample \(row) was asked for"
            )
        }
        return Array(values[(row * positions)..<((row + 1) * positions)])
    }

    /// Names of the key labels of cross-attention, in order of preference.
    public static let keyTokenNames = ["key_tokens", "source_tokens", "src_tokens", "encoder_tokens"]
}

func lastComponent(_ path: String) -> String {
    String(path.split(separator: "/").last ?? Substring(path))
}

/// A container whose raw 2-byte tensors are read as another element type.
final class ReinterpretedContainer: TensorContainer {
    let file: String
    let formatName: String
    let tensors: [StoredTensor]

    private let base: TensorContainer
    var attributes: [Attribute] { base.attributes }

    init(base: TensorContainer, type: ElementType) {
        self.base = base
        file = base.file
        formatName = base.formatName
        tensors = base.tensors.map { $0.reinterpreted(as: type) ?? $0 }
    }

    func rootAttribute(_ name: String) -> AttributeValue? { base.rootAttribute(name) }
}
