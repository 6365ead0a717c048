#if canImport(Glibc)
import Glibc
#endif

/// Golden files live beside this source file in `Golden/`. Run the tests with
/// `UPDATE_GOLDEN=1 swift test` to rewrite them from the current output (then review the diff).
enum Golden {
    static let directory: String = {
        let file = #filePath
        return String(file[..<file.lastIndex(of: "/")!]) + "/Golden"
    }()

    static var updating: Bool { getenv("UPDATE_GOLDEN") != nil }

    static func read(_ name: String) -> [UInt8]? {
        guard let f = fopen(directory + "/" + name, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    static func write(_ name: String, _ bytes: [UInt8]) {
        guard let f = fopen(directory + "/" + name, "wb") else { return }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }
}

/// The first differing line of two texts, for readable failures.
func firstDifference(_ a: String, _ b: String) -> String {
    let la = a.split(separator: "\n", omittingEmptySubsequences: false)
    let lb = b.split(separator: "\n", omittingEmptySubsequences: false)
    for i in 0..<max(la.count, lb.count) {
        let x = i < la.count ? String(la[i]) : "<missing>"
        let y = i < lb.count ? String(lb[i]) : "<missing>"
        if x != y { return "line \(i + 1):\n  got:  \(x)\n  want: \(y)" }
    }
    return "identical"
}
