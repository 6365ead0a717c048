import CCrypt
import Testing
@testable import MetricsExporter

#if canImport(Glibc)
import Glibc
#endif

/// A bcrypt hash made by libcrypt itself (crypt_gensalt + crypt_r), for the cross-check with htpasswd.
private func libcryptHash(_ password: String, prefix: String = "$2b$", cost: UInt = 5) throws -> String {
    var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
    guard mcescan_crypt_gensalt(prefix, cost, &setting, Int32(setting.count)) == 0 else {
        throw ToolError(description: "crypt_gensalt_rn refused \(prefix) cost \(cost)")
    }
    var out = [CChar](repeating: 0, count: Int(CRYPT_OUTPUT_SIZE))
    let n = mcescan_crypt(password, setting, &out, out.count)
    guard n > 0 else { throw ToolError(description: "crypt_r failed") }
    return String(decoding: out[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

@Suite("bcrypt and basic auth")
struct BasicAuthTests {
    @Test("htpasswd's hashes verify with crypt_r; wrong passwords do not")
    func htpasswdHashes() throws {
        let f = try Fixtures.get()
        #expect(f.aliceHash.hasPrefix("$2y$10$"))
        #expect(BasicAuthenticator.verify(password: Array("wonderland".utf8), hash: f.aliceHash))
        #expect(!BasicAuthenticator.verify(password: Array("Wonderland".utf8), hash: f.aliceHash))
        #expect(!BasicAuthenticator.verify(password: Array("wonderland ".utf8), hash: f.aliceHash))
        #expect(!BasicAuthenticator.verify(password: [], hash: f.aliceHash))
        #expect(BasicAuthenticator.verify(password: Array("builder".utf8), hash: f.bobHash))
        #expect(!BasicAuthenticator.verify(password: Array("wonderland".utf8), hash: f.bobHash))
    }

    @Test("passwords with spaces, colons and UTF-8 round-trip through htpasswd and crypt_r", arguments: [
        "p:a:s:s", "with space", "pässwörd ✓", String(repeating: "x", count: 72),
    ])
    func unusualPasswords(password: String) throws {
        let hash = try Fixtures.htpasswd(user: "u", password: password, cost: 4)
        #expect(BasicAuthenticator.verify(password: Array(password.utf8), hash: hash))
        // bcrypt reads at most 72 bytes of the password (a documented limit): only then does a
        // longer password match.
        #expect(BasicAuthenticator.verify(password: Array((password + "!").utf8), hash: hash) == (password.utf8.count >= 72))
    }

    @Test("libcrypt's own $2b$ hashes verify with htpasswd -v (the other direction)")
    func crossCheck() throws {
        let dir = try TempDir.shared.path
        let hash = try libcryptHash("s3cret", cost: 5)
        #expect(BcryptHash.cost(of: hash) == 5)
        #expect(BasicAuthenticator.verify(password: Array("s3cret".utf8), hash: hash))
        try writeText("\(dir)/htpasswd-cross", "carol:\(hash)\n")
        #expect(try shell("htpasswd -vb '\(dir)/htpasswd-cross' carol s3cret").status == 0)
        #expect(try shell("htpasswd -vb '\(dir)/htpasswd-cross' carol wrong").status != 0)
    }

    @Test("$2a$, $2b$ and $2y$ of the same salt agree for ordinary passwords")
    func prefixes() throws {
        let hash = try libcryptHash("same", cost: 4)
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let variant = prefix + hash.dropFirst(4)
            #expect(BasicAuthenticator.verify(password: Array("same".utf8), hash: variant), "\(prefix)")
        }
    }

    @Test("a NUL in the password never verifies (crypt would stop reading there)")
    func nulPassword() throws {
        let hash = try libcryptHash("abc", cost: 4)
        #expect(!BasicAuthenticator.verify(password: Array("abc".utf8) + [0, 0x78], hash: hash))
        let auth = BasicAuthenticator(users: ["u": hash])
        #expect(auth.authenticate(authorization: "Basic " + base64(Array("u:abc".utf8) + [0, 0x78])) == .rejected(user: "u"))
    }

    @Test("outcomes of Authorization headers", arguments: [
        (nil, "missing"),
        ("Basic " + base64(Array("alice:wonderland".utf8)), "ok alice"),
        ("basic " + base64(Array("alice:wonderland".utf8)), "ok alice"),
        ("BASIC   " + base64(Array("alice:wonderland".utf8)) + " ", "ok alice"),
        ("Basic " + base64(Array("alice:wrong".utf8)), "rejected alice"),
        ("Basic " + base64(Array("mallory:wonderland".utf8)), "rejected mallory"),
        ("Basic " + base64(Array("alice".utf8)), "malformed"),
        ("Basic", "malformed"),
        ("Basic ", "malformed"),
        ("Bearer abc", "malformed"),
        ("Basic !!!!", "malformed"),
        ("Basicx " + base64(Array("alice:wonderland".utf8)), "malformed"),
        ("Digest username=alice", "malformed"),
    ] as [(String?, String)])
    func outcomes(header: String?, expected: String) throws {
        let f = try Fixtures.get()
        let auth = BasicAuthenticator(users: ["alice": f.aliceHash])
        let outcome: String
        switch auth.authenticate(authorization: header) {
        case .authenticated(let user): outcome = "ok \(user)"
        case .rejected(let user): outcome = "rejected \(user)"
        case .missing: outcome = "missing"
        case .malformed: outcome = "malformed"
        case .busy: outcome = "busy"
        }
        #expect(outcome == expected)
    }

    @Test("a verified password is cached; failures are not; the cache does not hide a wrong password")
    func cache() throws {
        let f = try Fixtures.get()
        let auth = BasicAuthenticator(users: ["alice": f.aliceHash, "bob": f.bobHash])
        let good = basicHeader("alice", "wonderland")
        #expect(auth.authenticate(authorization: good) == .authenticated(user: "alice"))
        #expect(auth.bcryptVerifications == 1)
        for _ in 0..<5 { #expect(auth.authenticate(authorization: good) == .authenticated(user: "alice")) }
        #expect(auth.bcryptVerifications == 1)
        // The same header with different base64 padding/spacing is still the same credentials.
        #expect(auth.authenticate(authorization: "basic  " + base64(Array("alice:wonderland".utf8))) == .authenticated(user: "alice"))
        #expect(auth.bcryptVerifications == 1)
        for _ in 0..<3 { #expect(auth.authenticate(authorization: basicHeader("alice", "wonder")) == .rejected(user: "alice")) }
        #expect(auth.bcryptVerifications == 4)
        // Another user's cached password does not open this one.
        #expect(auth.authenticate(authorization: basicHeader("bob", "wonderland")) == .rejected(user: "bob"))
        #expect(auth.authenticate(authorization: basicHeader("bob", "builder")) == .authenticated(user: "bob"))
        #expect(auth.authenticate(authorization: basicHeader("bob", "builder")) == .authenticated(user: "bob"))
        #expect(auth.bcryptVerifications == 6)
        // Unknown users cost a bcrypt too (no user-name oracle by timing) and are never cached.
        #expect(auth.authenticate(authorization: basicHeader("eve", "wonderland")) == .rejected(user: "eve"))
        #expect(auth.bcryptVerifications == 7)
    }

    @Test("while every bcrypt slot is busy, uncached attempts get .busy at once and cached clients still pass")
    func concurrencyLimit() throws {
        let f = try Fixtures.get()
        let auth = BasicAuthenticator(users: ["alice": f.aliceHash, "bob": f.bobHash], maxConcurrentVerifications: 1)
        #expect(auth.authenticate(authorization: basicHeader("alice", "wonderland")) == .authenticated(user: "alice"))
        #expect(auth.acquireVerificationSlot())  // stands for a verification in progress
        #expect(!auth.acquireVerificationSlot())
        #expect(auth.authenticate(authorization: basicHeader("bob", "builder")) == .busy)
        #expect(auth.authenticate(authorization: basicHeader("alice", "wrong")) == .busy)
        #expect(auth.authenticate(authorization: basicHeader("alice", "wonderland")) == .authenticated(user: "alice"))
        #expect(auth.bcryptVerifications == 1)
        auth.releaseVerificationSlot()
        #expect(auth.authenticate(authorization: basicHeader("bob", "builder")) == .authenticated(user: "bob"))
        #expect(auth.bcryptVerifications == 2)
    }

    @Test("strict base64", arguments: [
        ("YWxpY2U6cHc=", "alice:pw"),
        ("YWxpY2U6cHc", "alice:pw"),
        ("", ""),
        ("YQ==", "a"),
        ("YWI=", "ab"),
        ("YWJj", "abc"),
    ])
    func base64Good(input: String, expected: String) {
        #expect(base64Decode(ArraySlice(Array(input.utf8))) == Array(expected.utf8))
    }

    @Test("malformed base64 is refused", arguments: ["Y", "YQ=", "YQ===", "YR==", "YW J", "YWJj\n", "YW-j", "=YWJ"])
    func base64Bad(input: String) {
        #expect(base64Decode(ArraySlice(Array(input.utf8))) == nil)
    }

    @Test("constant-time comparison", arguments: [
        ([1, 2, 3], [1, 2, 3], true), ([1, 2, 3], [1, 2, 4], false), ([1, 2], [1, 2, 3], false), ([], [], true), ([0], [], false),
    ] as [([UInt8], [UInt8], Bool)])
    func constantTime(a: [UInt8], b: [UInt8], equal: Bool) {
        #expect(constantTimeEqual(a, b) == equal)
    }
}
