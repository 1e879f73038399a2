import Testing
import AttnCore

@Suite("Strings from files, shown on a terminal")
struct PrintableTextTests {
    @Test("C0, DEL, C1, bidirectional controls and line separators are escaped; letters of every script are kept")
    func escapes() {
        #expect(PrintableText.escaped("a\u{1b}]52;c;SGVsbG8=\u{07}b") == "a\\u{1b}]52;c;SGVsbG8=\\u{07}b")
        #expect(
            PrintableText.escaped("x\u{7f}\u{9b}31m\u{202e}y\u{2066}\u{2028}\n")
                == "x\\u{7f}\\u{9b}31m\\u{202e}y\\u{2066}\\u{2028}\\u{0a}")
        #expect(PrintableText.escaped("café ✓ ключ 東京 Q·Kᵀ") == "café ✓ ключ 東京 Q·Kᵀ")
        #expect(PrintableText.escaped("line one\nline\u{1b}two\n", keeping: ["\n"]) == "line one\nline\\u{1b}two\n")
        #expect(PrintableText.escaped("\"a\r\nb\tc\u{1b}\"\n", keeping: ["\n", "\r", "\t"]) == "\"a\r\nb\tc\\u{1b}\"\n")
    }

    @Test(
        "a path's bytes survive the trip through a Swift string exactly, and show as \\xNN where they are not UTF-8",
        arguments: [
            [0x6C, 0x61, 0x74, 0xE9, 0x2E, 0x68, 0x35], [0xC3, 0xA9], [0xFF, 0xFE, 0x80], [0xF4, 0x8F, 0xBE, 0x80],
            [0xED, 0xA0, 0x80], [0x61]
        ])
    func pathBytes(bytes: [UInt8]) {
        let text = PathBytes.decode(bytes)
        #expect(PathBytes.encode(text) == bytes)
        PathBytes.withCString(text) { c in
            #expect(
                Array(
                    UnsafeBufferPointer(
                        start: UnsafeRawPointer(c).assumingMemoryBound(to: UInt8.self), count: bytes.count + 1))
                    == bytes + [0])
        }
    }

    @Test("two names differing in a non-UTF-8 byte stay different; valid UTF-8 is itself")
    func distinctNames() {
        #expect(PathBytes.decode([0x61, 0xE9]) != PathBytes.decode([0x61, 0xE8]))
        #expect(PrintableText.escaped(PathBytes.decode([0x61, 0xE9, 0x2E, 0x70])) == "a\\xE9.p")
        #expect(PathBytes.decode(Array("é".utf8)) == "é")
        // U+10FF80 written as real UTF-8 keeps its four bytes too (the stand-ins cannot be confused with it).
        #expect(PrintableText.escaped(PathBytes.decode([0xF4, 0x8F, 0xBE, 0x80])) == "\\xF4\\x8F\\xBE\\x80")
    }
}
