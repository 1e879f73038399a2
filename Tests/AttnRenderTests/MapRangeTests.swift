import Testing
import AttnCore
@testable import AttnRender

/// Percentile ranges (`--range p1:p99`) and the note on a min–max scale spoilt by one cell, on hand-worked maps.
@Suite("Percentile ranges and spoilt scales")
struct MapRangeTests {
    @Test("percentiles interpolate between ranks as numpy's default does; NaN and ±inf are left out")
    func percentiles() throws {
        // numpy.percentile(range(10), [10, 90, 50, 0, 100]) = [0.9, 8.1, 4.5, 0, 9]
        let map = Matrix(rows: 2, columns: 6, values: [9, 8, 7, 6, 5, .nan, 4, 3, 2, 1, 0, .infinity])
        let cases: [(Double, Double, Float, Float)] = [(10, 90, 0.9, 8.1), (50, 100, 4.5, 9), (0, 50, 0, 4.5)]
        for (low, high, a, b) in cases {
            let r = try #require(MapRange.percentiles(of: [map], low: low, high: high))
            #expect(abs(r.low - a) < 1e-6 && abs(r.high - b) < 1e-6, "\(low), \(high): \(r)")
        }
        // Two maps together: 0...9 split over them.
        let halves = [
            Matrix(rows: 1, columns: 5, values: [0, 1, 2, 3, 4]), Matrix(rows: 1, columns: 5, values: [9, 8, 7, 6, 5])
        ]
        #expect(MapRange.percentiles(of: halves, low: 10, high: 90) == ValueRange(low: 0.9, high: 8.1))
        #expect(MapRange.percentiles(of: [Matrix(rows: 1, columns: 1, values: [.nan])], low: 1, high: 99) == nil)
    }

    @Test("--range parses LO:HI, shared, pLO:pHI and shared:pLO:pHI, and nothing else")
    func parsing() {
        typealias Scale = MapWriter.Scale
        #expect(Scale(argument: "p1:p99") == .percentiles(low: 1, high: 99, shared: false))
        #expect(Scale(argument: "shared:p0.5:p99.5") == .percentiles(low: 0.5, high: 99.5, shared: true))
        #expect(Scale(argument: "p0:p100") == .percentiles(low: 0, high: 100, shared: false))
        #expect(Scale(argument: "0:0.5") == .fixed(ValueRange(low: 0, high: 0.5)))
        #expect(Scale(argument: "shared") == .shared)
        for bad in ["p99:p1", "p1:p101", "p-1:p5", "1:p5", "p1:5", "pa:p2", "p1:p1", "shared:", "shared:0:1", "p1"] {
            #expect(Scale(argument: bad) == nil, "\(bad)")
        }
    }

    @Test("a percentile scale whose two ends are equal falls back to the min and max")
    func degenerate() {
        let writer = MapWriter(output: "x.png", scale: .percentiles(low: 1, high: 99, shared: false))
        let zeros = Matrix(rows: 1, columns: 200, values: [Float](repeating: 0, count: 199) + [0.5])
        #expect(writer.scale(for: [zeros]) == ValueRange(low: 0, high: 0.5))
        let spread = Matrix(rows: 1, columns: 101, values: (0...100).map(Float.init))
        #expect(writer.scale(for: [spread]) == ValueRange(low: 1, high: 99))
    }

    @Test("one cell far above the rest spoils the min–max scale; an even spread, or two cells near the rank, do not")
    func spoilt() throws {
        // 100 cells of 0.01 and one of 1 at (row 10, column 0): the 99th percentile (rank 99 of 101) is 0.01.
        let one = Matrix(rows: 101, columns: 1, values: [Float](repeating: 0.01, count: 100) + [1])
        let o = try #require(MapRange.outlier(in: one))
        #expect(o.map == 0 && o.row == 100 && o.column == 0 && o.value == 1 && o.percentile99 == 0.01)
        #expect(abs(o.share) < 1e-12)
        // 0...100: the 99th percentile is 99, at the top of the scale.
        #expect(MapRange.outlier(in: Matrix(rows: 1, columns: 101, values: (0...100).map(Float.init))) == nil)
        // 99 zeros, 0.5, 1: the percentile is the cell at rank 99, 0.5, over a third of the scale.
        let edge = Matrix(rows: 1, columns: 101, values: [Float](repeating: 0, count: 99) + [0.5, 1])
        #expect(MapRange.outlier(in: edge) == nil)
        // The same with 0.3 at rank 99: under a third, spoilt; the brightest cell is named in the second map.
        let under = [
            Matrix(rows: 1, columns: 100, values: [Float](repeating: 0, count: 99) + [0.3]),
            Matrix(rows: 1, columns: 1, values: [1])
        ]
        let u = try #require(MapRange.outlier(in: under))
        #expect(u.map == 1 && u.row == 0 && u.column == 0 && abs(u.percentile99 - 0.3) < 1e-7)
        #expect(MapRange.outlier(in: Matrix(rows: 1, columns: 3, values: [2, 2, 2])) == nil)
    }
}
