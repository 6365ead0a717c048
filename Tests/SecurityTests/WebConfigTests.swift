import Testing
@testable import MetricsExporter

#if canImport(Glibc)
import Glibc
#endif

/// Writes `yaml` as `web.yml` next to the fixture TLS files and parses it.
private func parse(_ yaml: String) throws -> WebConfig {
    let f = try Fixtures.get()
    let file = "\(f.dir)/web.yml"
    return try WebConfig.parse(yaml, file: file)
}

private func parseError(_ yaml: String) throws -> WebConfigError? {
    do {
        _ = try parse(yaml)
        return nil
    } catch let error as WebConfigError {
        return error
    }
}

@Suite("--web.config.file parsing")
struct WebConfigTests {
    @Test("a complete file: TLS paths relative to the file, both users, TLS 1.2 minimum")
    func goodFile() throws {
        let f = try Fixtures.get()
        let config = try parse("""
            # comment
            tls_server_config:
              cert_file: tls/cert.pem
              key_file: \(f.keyFile)
              client_auth_type: NoClientCert
            basic_auth_users:
              alice: \(f.aliceHash)
              "bob": '\(f.bobHash)'
            """)
        let tls = try #require(config.tls)
        #expect(tls.certFile == "\(f.dir)/tls/cert.pem")
        #expect(tls.keyFile == f.keyFile)
        #expect(tls.certificatePEM == (try readText(f.certFile)))
        #expect(tls.keyPEM == (try readText(f.keyFile)))
        #expect(tls.minVersion == .tls12)
        #expect(tls.priorities == "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")
        #expect(tls.certificateExpires > Int(time(nil)))
        #expect(config.basicAuthUsers == ["alice": f.aliceHash, "bob": f.bobHash])
        // bob's cost 5 is below the recommendation; the key is chmod 600.
        #expect(config.warnings.count == 1)
        #expect(config.warnings.first?.contains("bob") == true)
    }

    @Test("min_version TLS13 narrows the priority string")
    func tls13() throws {
        let config = try parse("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  min_version: TLS13\n")
        #expect(config.tls?.minVersion == .tls13)
        #expect(config.tls?.priorities == "NORMAL:-VERS-ALL:+VERS-TLS1.3")
    }

    @Test("auth only, TLS only, and an empty file", arguments: [
        ("basic_auth_users:\n  alice: $HASH\n", false, 1),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n", true, 0),
        ("", false, 0),
        ("# nothing configured\n", false, 0),
    ])
    func partialFiles(yaml: String, tls: Bool, users: Int) throws {
        let f = try Fixtures.get()
        let config = try parse(yaml.replacingOccurrences(of: "$HASH", with: f.aliceHash))
        #expect((config.tls != nil) == tls)
        #expect(config.basicAuthUsers.count == users)
    }

    /// Every bad file names the key at fault (nil: a file-level problem) and says why.
    @Test("every error names the key", arguments: [
        ("- a\n- b\n", nil, "top level must be a mapping"),
        ("tls_server_config: [\n", nil, "not valid YAML"),
        ("unknown_setting: 1\n", "unknown_setting", "unknown key"),
        ("http_server_config:\n  http2: false\n", "http_server_config", "not supported"),
        ("rate_limit:\n  interval: 1s\n", "rate_limit", "not supported"),
        ("tls_server_config:\n", "tls_server_config", "is empty"),
        ("tls_server_config: yes\n", "tls_server_config", "must be a mapping"),
        ("tls_server_config:\n  key_file: tls/key.pem\n", "tls_server_config.cert_file", "is required"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n", "tls_server_config.key_file", "is required"),
        ("tls_server_config:\n  cert_file: ''\n  key_file: tls/key.pem\n", "tls_server_config.cert_file", "non-empty path"),
        ("tls_server_config:\n  cert_file: [a]\n  key_file: tls/key.pem\n", "tls_server_config.cert_file", "must be a string"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
         "tls_server_config.client_auth_type", "only NoClientCert"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  client_ca_file: ca.pem\n",
         "tls_server_config.client_ca_file", "not supported"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
         "tls_server_config.cipher_suites", "not supported"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  max_version: TLS12\n",
         "tls_server_config.max_version", "not supported"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  min_version: TLS11\n",
         "tls_server_config.min_version", "never offered"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  min_version: SSL3\n",
         "tls_server_config.min_version", "not a TLS version"),
        ("tls_server_config:\n  cert: inline\n  key_file: tls/key.pem\n", "tls_server_config.cert", "inline PEM"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  certfile: x\n",
         "tls_server_config.certfile", "unknown key"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n",
         "cert_file", "more than once in the same mapping (first at line 2)"),
        ("tls_server_config:\n  cert_file: tls/missing.pem\n  key_file: tls/key.pem\n", "tls_server_config.cert_file", "cannot read"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/missing.pem\n", "tls_server_config.key_file", "cannot read"),
        ("tls_server_config:\n  cert_file: tls/key.pem\n  key_file: tls/key.pem\n", "tls_server_config.cert_file", "no usable PEM certificate"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/cert.pem\n", "tls_server_config.key_file", "no usable unencrypted PEM private key"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/encrypted-key.pem\n", "tls_server_config.key_file", "no usable unencrypted PEM private key"),
        ("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/other-key.pem\n", "tls_server_config.key_file", "do not load together"),
        ("tls_server_config:\n  cert_file: tls\n  key_file: tls/key.pem\n", "tls_server_config.cert_file", "not a regular file"),
        ("basic_auth_users:\n", "basic_auth_users", "is empty"),
        ("basic_auth_users: {}\n", "basic_auth_users", "is empty"),
        ("basic_auth_users: [alice]\n", "basic_auth_users", "must be a mapping"),
        ("basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice", "not a bcrypt hash"),
        ("basic_auth_users:\n  alice: $1$abc$0123456789012345678901\n", "basic_auth_users.alice", "not a bcrypt hash"),
        ("basic_auth_users:\n  alice:\n", "basic_auth_users.alice", "needs a bcrypt hash"),
        ("basic_auth_users:\n  alice: {x: 1}\n", "basic_auth_users.alice", "must be a string"),
        ("basic_auth_users:\n  'a:b': $HASH\n", "basic_auth_users.a:b", "may not contain ':'"),
        ("basic_auth_users:\n  '': $HASH\n", "basic_auth_users.", "may not be empty"),
        ("basic_auth_users:\n  alice: $HASH\n  alice: $HASH\n", "alice", "more than once in the same mapping (first at line 2)"),
        ("basic_auth_users:\n  alice: $HASH\nbasic_auth_users:\n  bob: $HASH\n", "basic_auth_users", "more than once in the same mapping (first at line 1)"),
    ] as [(String, String?, String)])
    func errors(yaml: String, key: String?, fragment: String) throws {
        let f = try Fixtures.get()
        let error = try #require(try parseError(yaml.replacingOccurrences(of: "$HASH", with: f.aliceHash)))
        #expect(error.key == key)
        #expect(error.message.contains(fragment), "message: \(error.message)")
        #expect(error.file == "\(f.dir)/web.yml")
        #expect(error.description.hasPrefix("\(f.dir)/web.yml: " + (key.map { "\($0): " } ?? "")))
    }

    @Test("a missing or unreadable file is a file-level error naming the file")
    func missingFile() throws {
        let dir = try TempDir.shared.path
        do {
            _ = try WebConfig.load(path: "\(dir)/does-not-exist.yml")
            Issue.record("expected an error")
        } catch {
            #expect(error.key == nil)
            #expect(error.file == "\(dir)/does-not-exist.yml")
            #expect(error.message.contains("No such file"))
        }
    }

    @Test("load() reads the file from disk; relative TLS paths follow the file, not the working directory")
    func loadFromDisk() throws {
        let f = try Fixtures.get()
        let file = "\(f.dir)/tls/inner.yml"
        try writeText(file, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: \(f.aliceHash)\n")
        let config = try WebConfig.load(path: file)
        #expect(config.tls?.certFile == f.certFile)
        #expect(config.basicAuthUsers["alice"] == f.aliceHash)
    }

    @Test("an expired certificate loads with a warning")
    func expiredCertificate() throws {
        let f = try Fixtures.get()
        let far = Int(time(nil)) + 10 * 86400
        let config = try WebConfig.parse("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n",
                                         file: "\(f.dir)/web.yml", now: far)
        #expect(config.warnings.contains { $0.contains("expired") })
    }

    @Test("bcrypt hash shapes", arguments: [
        ("$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", 10),
        ("$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", 4),
        ("$2a$31$abcdefghijklmnopqrstuu./CDEFGHIJKLMNOPQRSTUVWXYZ01234", 31),
        ("$2x$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", nil),
        ("$2y$03$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", nil),
        ("$2y$32$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", nil),
        ("$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ0123", nil),
        ("$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234x", nil),
        ("$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ0123+", nil),
        ("$2y$1a$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", nil),
        ("", nil),
    ] as [(String, Int?)])
    func bcryptShapes(hash: String, cost: Int?) {
        #expect(BcryptHash.cost(of: hash) == cost)
    }

    @Test("relative paths resolve against the config file's directory", arguments: [
        ("cert.pem", "/etc/mcescan/web.yml", "/etc/mcescan/cert.pem"),
        ("tls/cert.pem", "/etc/mcescan/web.yml", "/etc/mcescan/tls/cert.pem"),
        ("/abs/cert.pem", "/etc/mcescan/web.yml", "/abs/cert.pem"),
        ("cert.pem", "web.yml", "cert.pem"),
        ("cert.pem", "conf/web.yml", "conf/cert.pem"),
    ])
    func resolve(path: String, file: String, expected: String) {
        #expect(WebConfig.resolve(path, relativeTo: file) == expected)
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
