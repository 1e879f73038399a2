import AttnCore

/// Which positions of a padded sequence are real tokens: `--length N`, or the file's
/// `attention_mask` (Hugging Face's convention: 1 for a real token, 0 for padding) or `lengths`.
public enum Padding {
    public static let maskNames = ["attention_mask", "padding_mask"]
    public static let lengthNames = ["lengths", "length", "seq_lens"]

    /// The real positions among `positions`, for sample `batch` (default 0) of a batch axis.
    /// - Returns: nil when neither `length` nor a mask or lengths tensor says anything.
    public static func selection(in file: DumpFile, positions: Int, batch: Int?, length: Int?) throws -> TokenSelection?
    {
        if let length {
            guard length >= 1 && length <= positions else {
                throw AttnError(
                    file: file.path,
                    "--length \(length) is out of range: expected 1...\(positions), the number of positions")
            }
            return TokenSelection(kept: Array(0..<length), total: positions, origin: "--length \(length)")
        }
        if let mask = file.tensor(lastNamedIn: maskNames) {
            let shape = mask.shape
            guard let last = shape.last, last == positions else {
                throw AttnError(
                    file: file.path, dataset: mask.label ?? mask.name,
                    """
                    expected a mask of \(positions) positions (shape (\(positions),) or (batch, \(positions))), \
                    found shape \(formatShape(shape))
                    """
                )
            }
            let values = try mask.readNumbers(file: file.path)
            let row = try sampleRow(of: mask, rows: values.count / positions, batch: batch, file: file)
            let slice = values[(row * positions)..<((row + 1) * positions)]
            if let bad = slice.first(where: { !$0.isFinite }) {
                throw AttnError(
                    file: file.path, dataset: mask.label ?? mask.name, "expected 0 or 1 for each position, found \(bad)"
                )
            }
            let kept = slice.indices.filter { slice[$0] != 0 }.map { $0 - row * positions }
            guard !kept.isEmpty else {
                throw AttnError(
                    file: file.path, dataset: mask.label ?? mask.name,
                    "the mask of sample \(row) keeps no token: every position is 0")
            }
            return TokenSelection(
                kept: kept, total: positions, origin: mask.name.split(separator: "/").last.map(String.init) ?? mask.name
            )
        }
        if let lengths = file.tensor(lastNamedIn: lengthNames) {
            let values = try lengths.readNumbers(file: file.path)
            guard lengths.shape.count <= 1, !values.isEmpty else {
                throw AttnError(
                    file: file.path, dataset: lengths.label ?? lengths.name,
                    """
                    expected one length or one per sample (shape () or (batch,)), found shape \
                    \(formatShape(lengths.shape))
                    """
                )
            }
            let row = try sampleRow(of: lengths, rows: values.count, batch: batch, file: file)
            let value = values[row]
            guard value == value.rounded(), value >= 1, value <= Double(positions) else {
                let shown =
                    value.isFinite && value == value.rounded() && abs(value) < 1e15
                    ? String(Int64(value)) : String(value)
                throw AttnError(
                    file: file.path, dataset: lengths.label ?? lengths.name,
                    """
                    length \(shown) of sample \(row) is out of range: expected 1...\(positions), the number of \
                    positions
                    """
                )
            }
            return TokenSelection(
                kept: Array(0..<Int(value)), total: positions,
                origin: lengths.name.split(separator: "/").last.map(String.init) ?? lengths.name)
        }
        return nil
    }

    /// The row of a per-sample tensor for sample `batch`: 0 when it holds one row.
    private static func sampleRow(of tensor: StoredTensor, rows: Int, batch: Int?, file: DumpFile) throws -> Int {
        if rows == 1 { return 0 }
        let b = batch ?? 0
        guard b < rows else {
            throw AttnError(
                file: file.path, dataset: tensor.label ?? tensor.name,
                "has \(rows) samples, but sample \(b) was asked for")
        }
        return b
    }
}
