import CCrypt
import CGnuTLS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// HTTP basic authentication against bcrypt hashes (`basic_auth_users` of `--web.config.file`).
///
/// Verification runs libcrypt's `crypt_r` with the stored hash as setting and compares the result
/// with the stored hash in constant time. A bcrypt of cost 10 costs tens of milliseconds of CPU, so
/// a verified password is cached; see `VerifiedCache` for what is kept. Failed attempts are never
/// cached, and at most `maxConcurrentVerifications` bcrypt computations run at once (further
/// attempts with credentials not in the cache are answered `.busy` at once), so a flood of wrong
/// passwords cannot occupy every server thread while cached clients are still served.
public final class BasicAuthenticator: Sendable {
    /// The result of checking one `Authorization` header.
    public enum Outcome: Sendable, Equatable {
        /// Valid credentials for this user.
        case authenticated(user: String)
        /// No `Authorization` header.
        case missing
        /// A header that is not `Basic <base64 of user:password>`.
        case malformed
        /// Unknown user or wrong password (not distinguished, to the client or in timing).
        case rejected(user: String)
        /// Too many bcrypt verifications are running; try again shortly.
        case busy
    }

    /// User name (UTF-8 bytes) -> stored bcrypt hash.
    private let users: [[UInt8]: String]
    private let cache: VerifiedCache
    private let verifying = Atomic<Int>(0)
    private let maxConcurrentVerifications: Int
    /// bcrypt runs (cache misses) so far; for tests and the log.
    private let bcryptRuns = Atomic<Int>(0)

    /// - users: name -> bcrypt hash, as `WebConfig` validated them.
    /// - maxConcurrentVerifications: bcrypt computations allowed at once (default: half the CPUs).
    public init(users: [String: String], maxConcurrentVerifications: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) / 2)) {
        var map: [[UInt8]: String] = [:]
        for (name, hash) in users { map[Array(name.utf8)] = hash }
        self.users = map
        self.cache = VerifiedCache()
        self.maxConcurrentVerifications = max(1, maxConcurrentVerifications)
    }

    /// How many times bcrypt actually ran (cache misses, including rejected attempts).
    public var bcryptVerifications: Int { bcryptRuns.load(ordering: .relaxed) }

    /// Checks an `Authorization` header value (nil when absent).
    public func authenticate(authorization: String?) -> Outcome {
        guard let authorization else { return .missing }
        guard var credentials = Self.decodeBasic(authorization) else { return .malformed }
        defer { wipe(&credentials) }
        guard let colon = credentials.firstIndex(of: UInt8(ascii: ":")) else { return .malformed }
        let nameBytes = Array(credentials[..<colon])
        var password = Array(credentials[(colon + 1)...])
        defer { wipe(&password) }
        let name = String(decoding: nameBytes, as: UTF8.self)
        // A NUL would silently end the password for crypt(3): such a password can never be right.
        let usable = !password.contains(0)

        let stored = users[nameBytes]
        if let stored, usable, cache.contains(user: nameBytes, hash: stored, password: password) {
            return .authenticated(user: name)
        }
        guard acquireVerificationSlot() else { return .busy }
        defer { releaseVerificationSlot() }
        bcryptRuns.wrappingAdd(1, ordering: .relaxed)
        // An unknown user still costs one bcrypt (against another user's hash, result ignored),
        // so response time does not tell which user names exist.
        guard let hash = stored ?? users.values.first else { return .rejected(user: name) }
        let ok = Self.verify(password: password, hash: hash) && stored != nil && usable
        guard ok else { return .rejected(user: name) }
        cache.insert(user: nameBytes, hash: hash, password: password)
        return .authenticated(user: name)
    }

    /// Takes one of the `maxConcurrentVerifications` bcrypt slots; false when all are taken.
    func acquireVerificationSlot() -> Bool {
        guard verifying.wrappingAdd(1, ordering: .acquiring).newValue <= maxConcurrentVerifications else {
            verifying.wrappingSubtract(1, ordering: .releasing)
            return false
        }
        return true
    }

    func releaseVerificationSlot() {
        verifying.wrappingSubtract(1, ordering: .releasing)
    }

    /// bcrypt-verifies `password` against `hash` with `crypt_r`; constant-time comparison.
    public static func verify(password: [UInt8], hash: String) -> Bool {
        guard !password.contains(0) else { return false }
        var phrase = password + [0]
        defer { wipe(&phrase) }
        var out = [CChar](repeating: 0, count: Int(CRYPT_OUTPUT_SIZE))
        defer { for i in out.indices { out[i] = 0 } }
        let length = phrase.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { c in
                hash.withCString { mcescan_crypt(c.baseAddress, $0, &out, out.count) }
            }
        }
        guard length > 0 else { return false }
        let computed = out[0..<Int(length)].map { UInt8(bitPattern: $0) }
        return constantTimeEqual(computed, Array(hash.utf8))
    }

    /// The bytes after `Basic ` (scheme case-insensitive), base64-decoded; nil when malformed.
    static func decodeBasic(_ header: String) -> [UInt8]? {
        let bytes = Array(header.utf8)
        let scheme = Array("basic".utf8)
        guard bytes.count > scheme.count, bytes[scheme.count] == UInt8(ascii: " ") else { return nil }
        for i in 0..<scheme.count where bytes[i] | 0x20 != scheme[i] { return nil }
        var start = scheme.count
        while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
        var end = bytes.count
        while end > start, bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
        return base64Decode(bytes[start..<end])
    }
}

/// The cache of verified credentials: user -> HMAC-SHA-256(per-process random key, password) for
/// the stored hash it was verified against.
///
/// Why this shape: the cache must let a repeated `Authorization` header skip bcrypt without keeping
/// the password (or the header, which is only base64 of it) in memory. A keyed hash under a random
/// key made at start and never written anywhere is one-way for anyone without that key, compares in
/// constant time, and one entry per configured user bounds the cache: only passwords that already
/// passed bcrypt are stored, so failed attempts cannot grow it. A user's entry is replaced when they
/// authenticate with another valid password (which cannot happen while the stored hash is fixed,
/// but costs nothing to handle).
final class VerifiedCache: Sendable {
    private let key: [UInt8]
    private let entries = Mutex<[[UInt8]: (hash: String, digest: [UInt8])]>([:])

    init() {
        var key = [UInt8](repeating: 0, count: 32)
        if mcescan_random_key(&key, key.count) != 0 {
            // GnuTLS's generator failed (should not happen); the stdlib's reads getrandom(2).
            var generator = SystemRandomNumberGenerator()
            key = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        }
        self.key = key
    }

    func contains(user: [UInt8], hash: String, password: [UInt8]) -> Bool {
        guard let entry = entries.withLock({ $0[user] }), entry.hash == hash,
              let digest = self.digest(password) else { return false }
        return constantTimeEqual(digest, entry.digest)
    }

    func insert(user: [UInt8], hash: String, password: [UInt8]) {
        guard let digest = digest(password) else { return }
        entries.withLock { $0[user] = (hash, digest) }
    }

    private func digest(_ password: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        let rc = key.withUnsafeBytes { k in
            password.withUnsafeBytes { p in
                mcescan_hmac_sha256(k.baseAddress, k.count, p.baseAddress, p.count, &out)
            }
        }
        return rc == 0 ? out : nil
    }
}

/// True when `a` and `b` are equal; the time taken depends only on the lengths.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    let n = min(a.count, b.count)
    for i in 0..<n { difference |= a[i] ^ b[i] }
    return difference == 0
}

/// Overwrites a buffer holding secret bytes (best effort: Swift may have made copies).
func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { explicit_bzero(base, $0.count) } }
}

/// Strict RFC 4648 base64 (standard alphabet; padding optional; nothing else allowed).
func base64Decode(_ input: ArraySlice<UInt8>) -> [UInt8]? {
    func value(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt32(c - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt32(c - UInt8(ascii: "a") + 26)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0") + 52)
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }
    var data = Array(input)
    var padding = 0
    while data.last == UInt8(ascii: "=") && padding < 2 {
        data.removeLast()
        padding += 1
    }
    if padding > 0 && (data.count + padding) % 4 != 0 { return nil }
    guard data.count % 4 != 1 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(data.count * 3 / 4)
    var accumulator: UInt32 = 0
    var bits = 0
    for c in data {
        guard let v = value(c) else { return nil }
        accumulator = (accumulator << 6) | v
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
        }
    }
    // Leftover bits must be zero (canonical encoding).
    if bits > 0 && accumulator & ((1 << UInt32(bits)) - 1) != 0 { return nil }
    return out
}
