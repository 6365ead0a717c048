import Testing
@testable import ScanWorkers

@Suite("Strict JSON")
struct StrictJSONTests {
    @Test("valid documents", arguments: [
        ("{}", JSONValue.object([])),
        ("  {\"a\": 1}\n", .object([("a", .number("1"))])),
        ("{\"a\":[1,-2.5e+3,true,false,null,\"x\"]}", .object([("a", .array([.number("1"), .number("-2.5e+3"), .bool(true), .bool(false), .null, .string("x")]))])),
        ("\"\\u00e9\\n\\\"\\\\\\/\\ud83d\\ude00\"", .string("é\n\"\\/😀")),
        ("0", .number("0")),
        ("-0", .number("-0")),
    ])
    func valid(_ text: String, _ want: JSONValue) throws {
        #expect(try StrictJSONParser.parse(Array(text.utf8)) == want)
    }

    @Test("invalid documents", arguments: [
        ("", JSONParseError.Code.empty), ("   \n", .empty),
        ("{", .syntax), ("{\"a\"}", .syntax), ("{\"a\":}", .syntax), ("{a:1}", .syntax), ("{'a':1}", .syntax),
        ("{\"a\":1,}", .syntax), ("[1,]", .syntax), ("01", .syntax), ("1.", .syntax), ("-", .syntax), ("1e", .syntax),
        ("+1", .syntax), (".5", .syntax), ("NaN", .syntax), ("Infinity", .syntax), ("tru", .syntax), ("nul", .syntax),
        ("\"abc", .syntax), ("\"\\x\"", .syntax), ("\"\\u12\"", .syntax), ("\"\\ud800\"", .syntax), ("\"a\tb\"", .syntax),
        ("{\"a\":1}x", .trailingGarbage), ("{} {}", .trailingGarbage), ("1 2", .trailingGarbage),
        ("{\"type\":1,\"type\":7}", .duplicateKey), ("{\"a\":{\"b\":1,\"b\":2}}", .duplicateKey),
        (String(repeating: "[", count: 40) + String(repeating: "]", count: 40), .tooDeep),
    ])
    func invalid(_ text: String, _ code: JSONParseError.Code) {
        #expect {
            _ = try StrictJSONParser.parse(Array(text.utf8))
        } throws: { ($0 as? JSONParseError)?.code == code }
    }

    @Test("invalid UTF-8 in a string")
    func badUTF8() {
        #expect(throws: JSONParseError.self) { try StrictJSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test("integers: exact, overflow, or not an integer", arguments: [
        ("5", JSONInteger.value(5)), ("-7", .value(-7)), ("9223372036854775807", .value(Int.max)),
        ("9223372036854775808", .overflow), ("-9223372036854775809", .overflow), ("18446744073709551616", .overflow),
        ("5.0", .notInteger), ("1e3", .notInteger), ("1E3", .notInteger), ("0.5", .notInteger),
    ])
    func integers(_ text: String, _ want: JSONInteger) throws {
        #expect(try StrictJSONParser.parse(Array(text.utf8)).integer == want)
    }
}
