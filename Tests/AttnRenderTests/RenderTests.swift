import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnRender
@testable import AttnReader

@Suite("Images")
struct ImageTests {
    @Test("PGM bytes of a 2×3 map, min–max normalised: round(255·t)")
    func pgmBytes() {
        // t = (v − 1) / 4 → 0, 0.25, 0.5, 0.75, 1, 0.15 → 0, 64 (63.75), 128 (127.5), 191 (191.25), 255, 38 (38.25)
        let map = Matrix(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 1.6])
        let image = Image(map: map, range: ValueRange.of(map)!, colormap: nil)
        #expect(image.netpbm() == Array("P5\n3 2\n255\n".utf8) + [0, 64, 128, 191, 255, 38])
    }

    @Test("PPM bytes through viridis: the published ends of the table")
    func ppmBytes() {
        let map = Matrix(rows: 1, columns: 2, values: [0, 1])
        let image = Image(map: map, range: ValueRange(low: 0, high: 1), colormap: .viridis)
        #expect(image.netpbm() == Array("P6\n2 1\n255\n".utf8) + [68, 1, 84, 253, 231, 37])
    }

    @Test(
        "colormap reference entries (matplotlib's tables, bytes = round(255·c))",
        arguments: [
            (Colormap.viridis, [68, 1, 84], [33, 145, 140], [253, 231, 37]),
            (.magma, [0, 0, 4], [183, 55, 121], [252, 253, 191]),
            (.inferno, [0, 0, 4], [188, 55, 84], [252, 255, 164]),
            (.jet, [0, 0, 128], [125, 255, 122], [128, 0, 0]),
            (.gray, [0, 0, 0], [128, 128, 128], [255, 255, 255]),
            // plasma #0d0887 … #f0f921; turbo #30123b … #7a0403 (Google's table); coolwarm (Moreland) blue to red via
            // grey
            (.plasma, [13, 8, 135], [204, 71, 120], [240, 249, 33]),
            (.turbo, [48, 18, 59], [164, 252, 60], [122, 4, 3]),
            (.coolwarm, [59, 76, 192], [221, 220, 220], [180, 4, 38])
        ])
    func colormapEntries(map: Colormap, first: [Int], middle: [Int], last: [Int]) {
        func bytes(_ t: Float) -> [Int] { let c = map.color(t); return [Int(c.0), Int(c.1), Int(c.2)] }
        #expect(bytes(0) == first)
        #expect(bytes(128 / 255) == middle)
        #expect(bytes(1) == last)
    }

    @Test("a fixed range clamps; a constant map and NaN draw at the low end")
    func ranges() {
        let r = ValueRange(low: 0, high: 0.5)
        #expect(r.normalise(1) == 1 && r.normalise(-1) == 0 && r.normalise(.nan) == 0 && r.normalise(0.25) == 0.5)
        #expect(ValueRange(argument: "0:1") == ValueRange(low: 0, high: 1))
        #expect(ValueRange(argument: "1:0") == nil && ValueRange(argument: "a:b") == nil)
        let constant = Matrix(rows: 1, columns: 2, values: [3, 3])
        #expect(Image(map: constant, range: ValueRange.of(constant)!, colormap: nil).pixels == [0, 0])
    }

    @Test("zoom repeats each pixel N×N")
    func zoom() {
        let image = Image(width: 2, height: 1, channels: 1, pixels: [10, 20]).zoomed(by: 2)
        #expect(image.width == 4 && image.height == 2)
        #expect(image.pixels == [10, 10, 20, 20, 10, 10, 20, 20])
    }
}

@Suite("Output files")
struct OutputTests {
    func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "attninspect-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test(".npy round trip: the reader gets back exactly the values written, header padded to 64")
    func npyRoundTrip() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let map = Matrix(rows: 3, columns: 4, values: (0..<12).map { Float($0) / 7 - 0.5 })
        let bytes = NPYWriter.encode(map)
        #expect((10 + Int(bytes[8]) + Int(bytes[9]) * 256) % 64 == 0)
        let path = folder + "/m.npy"
        try AtomicFile.write(bytes, to: path)
        let dump = try DumpFile(path: path)
        #expect(dump.tensors[0].shape == [3, 4])
        guard case .attention(let a) = try AttentionLayout.resolve(dump, options: ReadOptions()) else {
            Issue.record("no attention"); return
        }
        #expect(try a.layer(0).values == map.values)
    }

    @Test("atomic write: no temporary file remains; an unwritable target leaves nothing behind")
    func atomicWrite() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try AtomicFile.write([1, 2, 3], to: folder + "/a.pgm")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["a.pgm"])
        #expect(throws: AttnError.self) { try AtomicFile.write([1], to: folder + "/missing/b.pgm") }
        try FileManager.default.createDirectory(atPath: folder + "/dir.ppm", withIntermediateDirectories: false)
        #expect(throws: AttnError.self) { try AtomicFile.write([1], to: folder + "/dir.ppm") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["a.pgm", "dir.ppm"])
    }
}

@Suite("Text output")
struct TextOutputTests {
    @Test("JSON escapes strings and writes NaN as null")
    func json() {
        let value = JSONValue.object([
            ("a", .string("q\"\\\n\u{1}é")), ("b", .finite(.nan)),
            ("c", .array([.integer(1), .number(0.5), .bool(true)]))
        ])
        #expect(value.serialized() == #"{"a": "q\"\\\n\u0001é", "b": null, "c": [1, 0.5, true]}"#)
        // Strings with nothing to escape (the usual keys and labels) are written whole, non-ASCII included.
        let plain = JSONValue.object([("ключ", .string("plain é ✓ ~")), ("n", .number(-2.5e-10))])
        #expect(plain.serialized() == "{\"ключ\": \"plain é ✓ ~\", \"n\": -2.5e-10}")
        // DEL, C1 controls, bidirectional overrides and line separators are \u escapes: the same string, and nothing
        // a terminal acts on when the JSON is shown.
        #expect(JSONValue.quote("a\u{7f}b\u{9b}c\u{202e}d\u{2028}e") == #""a\u007fb\u009bc\u202ed\u2028e""#)
        #expect(JSONValue.quote("tab\there") == #""tab\there""#)
    }

    @Test(
        "CSV quotes by Unicode scalar: a quote or comma followed by a combining mark, and CR LF, are quoted (RFC 4180)")
    func csvScalars() {
        // "\u{301}" combines with the character before it: one Character, two scalars.
        #expect(CSV.line(["x\"\u{301}y"]) == "\"x\"\"\u{301}y\"\n")
        #expect(CSV.line([",\u{301}"]) == "\",\u{301}\"\n")
        #expect(CSV.line(["a\r\nb", "c"]) == "\"a\r\nb\",c\n")
        // Formula-like fields are left as they are (README, Security): numbers start with '-'.
        #expect(CSV.line(["=1+1", "-0.5", "@x", "+2"]) == "=1+1,-0.5,@x,+2\n")
    }

    @Test("CSV quotes fields with commas and quotes")
    func csv() {
        #expect(CSV.line(["a", "b,c", "d\"e"]) == "a,\"b,c\",\"d\"\"e\"\n")
    }

    @Test("fixed decimals round half away from zero and show nan")
    func fixed() {
        #expect(formatFixed(0.12346) == "0.1235")
        #expect(formatFixed(-1.5, decimals: 0) == "-2")
        #expect(formatFixed(2.99996) == "3.0000")
        #expect(formatFixed(.nan) == "nan")
        #expect(formatFixed(-0.00001) == "0.0000")
    }

    @Test("tables align numeric columns right")
    func table() {
        var t = TextTable(header: ["name", "value"])
        t.append(["a", "1.5"])
        t.append(["long", "10.25"])
        #expect(t.render() == "name  value\na       1.5\nlong  10.25\n")
    }
}

@Suite("JSON read back")
struct JSONReaderTests {
    @Test("a document written by JSONValue reads back to the same text: escapes, non-ASCII, numbers, integers")
    func roundTrip() throws {
        let document = JSONValue.document([
            ("text", .string("quote \" backslash \\ tab \t newline \n bell \u{07} é 中 😀 \u{202E}")),
            ("numbers", .array([.number(1.0), .number(-0.5), .number(1e-300), .number(6.02e23), .number(0.1)])),
            ("integers", .array([.integer(0), .integer(-7), .integer(Int.max)])),
            ("nested", .object([("a", .array([])), ("b", .object([])), ("c", .null), ("d", .bool(true))]))
        ])
        let text = document.serialized()
        let read = try JSONReader.parse(Array(text.utf8))
        #expect(read.serialized() == text)
        #expect(try JSONReader.parse(Array("[\"\\ud83d\\ude00\", 1E2, -0]".utf8)).serialized() == "[\"😀\", 100.0, 0]")
    }

    @Test("malformed text: an error with the byte offset")
    func malformed() {
        for (text, reason) in [
            ("", "unexpected end"), ("[1,]", "expected a value"), ("{\"a\" 1}", "expected :"),
            ("01", "expected a value"),
            ("\"\\x\"", "unknown escape"), ("\"\\ud800\"", "unpaired surrogate"), ("1e999", "out of range"),
            ("[1] x", "text after the value"), ("\"a\nb\"", "control character")
        ] {
            #expect(throws: JSONReader.Failure.self, "\(text)") { try JSONReader.parse(Array(text.utf8)) }
            do {
                _ = try JSONReader.parse(Array(text.utf8))
            } catch {
                #expect("\(error)".contains(reason), "\(text): \(error)")
            }
        }
    }
}
