import Foundation
import AttnCore

/// Locates `TestData/` from this source file (it sits outside every target).
public enum Fixtures {
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("TestData")

    public static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }

    /// A JSON file under TestData, parsed.
    public static func json(_ relative: String) throws -> JSON {
        let data = try Data(contentsOf: root.appendingPathComponent(relative))
        return JSON(try JSONSerialization.jsonObject(with: data))
    }

    /// `synthetic/expected.json`, parsed once.
    public static let expected: JSON = try! json("synthetic/expected.json")
}

/// Navigation through parsed JSON: `json["base"]["stats"]["entropy"].doubles2D`.
public struct JSON: @unchecked Sendable {
    public let value: Any?
    public init(_ value: Any?) { self.value = value }

    public subscript(key: String) -> JSON { JSON((value as? [String: Any])?[key]) }
    public subscript(index: Int) -> JSON {
        guard let array = value as? [Any], index >= 0, index < array.count else { return JSON(nil) }
        return JSON(array[index])
    }

    public var isNull: Bool { value == nil || value is NSNull }
    public var double: Double { (value as? NSNumber)?.doubleValue ?? .nan }
    public var int: Int { (value as? NSNumber)?.intValue ?? Int.min }
    public var string: String? { value as? String }
    public var array: [JSON] { ((value as? [Any]) ?? []).map(JSON.init) }
    public var doubles: [Double] { array.map(\.double) }
    public var doubles2D: [[Double]] { array.map(\.doubles) }
    public var doubles3D: [[[Double]]] { array.map(\.doubles2D) }
    public var strings: [String] { array.compactMap(\.string) }

    /// A 2-D array as a matrix.
    public var matrix: Matrix {
        let rows = doubles2D
        return Matrix(rows: rows.count, columns: rows.first?.count ?? 0, values: rows.flatMap { $0.map(Float.init) })
    }
}

/// The largest absolute difference between two equally long sequences (infinity if lengths differ).
public func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

public func maxAbsDifference(_ a: Matrix, _ b: [[Double]]) -> Double {
    guard a.rows == b.count, a.columns == (b.first?.count ?? 0) else { return .infinity }
    return maxAbsDifference(a.values.map(Double.init), b.flatMap { $0 })
}
