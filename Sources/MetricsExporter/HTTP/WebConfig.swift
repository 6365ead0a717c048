import CGnuTLS
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// A `--web.config.file` that cannot be used. `key` is the dotted path of the offending setting
/// (`tls_server_config.cert_file`, `basic_auth_users.alice`), nil for file-level problems.
public struct WebConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The config file as given on the command line.
    public var file: String
    /// The setting at fault, nil when the whole file is (unreadable, not YAML).
    public var key: String?
    public var message: String

    public init(file: String, key: String?, _ message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String {
        "\(file): " + (key.map { "\($0): " } ?? "") + message
    }
}

/// The exporter-toolkit web configuration (`--web.config.file`), as far as mcescan-exporter
/// implements it: `tls_server_config` (`cert_file`, `key_file`, `client_auth_type: NoClientCert`,
/// `min_version: TLS12|TLS13`) and `basic_auth_users` (name -> bcrypt hash).
///
/// Everything else exporter-toolkit knows (`client_ca_file`, `cipher_suites`, `http_server_config`,
/// `rate_limit`, ...) and every unknown key is an error naming the key: an operator must never
/// believe a setting is in force when it is not.
public struct WebConfig: Sendable, Equatable {
    /// TLS material, loaded and checked with GnuTLS at parse time.
    public struct TLS: Sendable, Equatable {
        /// Absolute or as-given paths (relative ones resolved against the config file's directory).
        public var certFile: String
        public var keyFile: String
        public var certificatePEM: String
        public var keyPEM: String
        /// Lowest protocol version accepted (`min_version`; exporter-toolkit's default is TLS 1.2).
        public var minVersion: TLSVersion
        /// notAfter of the leaf certificate (seconds since the epoch).
        public var certificateExpires: Int

        /// The GnuTLS priority string handed to libmicrohttpd (MHD_OPTION_HTTPS_PRIORITIES).
        public var priorities: String {
            switch minVersion {
            case .tls12: return "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
            case .tls13: return "NORMAL:-VERS-ALL:+VERS-TLS1.3"
            }
        }
    }

    public enum TLSVersion: String, Sendable, Equatable {
        case tls12 = "TLS12"
        case tls13 = "TLS13"
    }

    /// nil: plain HTTP.
    public var tls: TLS?
    /// User name -> bcrypt hash (`$2y$`, `$2b$` or `$2a$`). Empty: no authentication.
    public var basicAuthUsers: [String: String]
    /// Things worth a warning at start (weak bcrypt cost, key file readable by others,
    /// certificate expired).
    public var warnings: [String]

    public init(tls: TLS? = nil, basicAuthUsers: [String: String] = [:], warnings: [String] = []) {
        self.tls = tls
        self.basicAuthUsers = basicAuthUsers
        self.warnings = warnings
    }

    /// Reads and checks the file at `path`: YAML shape, every key, the bcrypt hashes, and the
    /// certificate and key (loaded with GnuTLS the way libmicrohttpd will load them).
    public static func load(path: String, now: Int = Int(time(nil))) throws(WebConfigError) -> WebConfig {
        let text: String
        do {
            text = try readSmallFile(path)
        } catch {
            throw WebConfigError(file: path, key: nil, "cannot read the web config file: \(error.message)")
        }
        return try parse(text, file: path, now: now)
    }

    /// Parses `text` (the contents of `file`). Relative `cert_file`/`key_file` are resolved against
    /// the directory of `file`; the TLS files are read and checked. `loadFile` is the reader for
    /// those (tests substitute fixtures).
    public static func parse(_ text: String, file: String, now: Int = Int(time(nil)),
                             loadFile: (String) throws(FileReadError) -> String = readSmallFile) throws(WebConfigError) -> WebConfig {
        func fail(_ key: String?, _ message: String) -> WebConfigError {
            WebConfigError(file: file, key: key, message)
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
            // Yams refuses repeated keys itself; it knows the key but not the path to it.
            throw fail(duplicates.first, "appears more than once in the same mapping (first at line \(context.mark.line))")
        } catch {
            throw fail(nil, "not valid YAML: \(yamlErrorText(error))")
        }
        var config = WebConfig()
        guard let root else { return config }  // an empty file: plain HTTP, no auth (logged at start)
        if case .scalar(let s) = root, isNull(s) { return config }
        guard case .mapping(let top) = root else {
            throw fail(nil, "the top level must be a mapping of settings (tls_server_config, basic_auth_users)")
        }
        var seen: Set<String> = []
        for (keyNode, value) in top {
            let key = try scalarKey(keyNode, parent: nil, fail)
            guard seen.insert(key).inserted else { throw fail(key, "appears twice") }
            switch key {
            case "tls_server_config":
                config.tls = try parseTLS(value, file: file, now: now, loadFile: loadFile, warnings: &config.warnings, fail)
            case "basic_auth_users":
                config.basicAuthUsers = try parseUsers(value, warnings: &config.warnings, fail)
            case "http_server_config":
                throw fail(key, "not supported by mcescan-exporter (libmicrohttpd serves HTTP/1.1 only and the response headers are fixed); remove it")
            case "rate_limit":
                throw fail(key, "not supported by mcescan-exporter (use --web.max-requests to bound connections); remove it")
            default:
                throw fail(key, "unknown key (supported: tls_server_config, basic_auth_users)")
            }
        }
        return config
    }

    static func parseTLS(_ node: Node, file: String, now: Int, loadFile: (String) throws(FileReadError) -> String,
                         warnings: inout [String], _ fail: (String?, String) -> WebConfigError) throws(WebConfigError) -> TLS {
        let section = "tls_server_config"
        guard case .mapping(let map) = node else {
            if case .scalar(let s) = node, isNull(s) {
                throw fail(section, "is empty; set cert_file and key_file, or remove tls_server_config to serve plain HTTP")
            }
            throw fail(section, "must be a mapping with cert_file and key_file")
        }
        var certFile: String?
        var keyFile: String?
        var minVersion = TLSVersion.tls12
        var seen: Set<String> = []
        for (keyNode, value) in map {
            let name = try scalarKey(keyNode, parent: section, fail)
            let key = "\(section).\(name)"
            guard seen.insert(name).inserted else { throw fail(key, "appears twice") }
            switch name {
            case "cert_file":
                certFile = try nonEmptyString(value, key: key, fail)
            case "key_file":
                keyFile = try nonEmptyString(value, key: key, fail)
            case "client_auth_type":
                let v = try stringValue(value, key: key, fail) ?? ""
                guard v == "" || v == "NoClientCert" else {
                    throw fail(key, "\"\(v)\" is not supported (only NoClientCert: client certificates are not checked by mcescan-exporter); use basic_auth_users to authenticate clients")
                }
            case "min_version":
                let v = try stringValue(value, key: key, fail) ?? ""
                switch v {
                case "", "TLS12": minVersion = .tls12
                case "TLS13": minVersion = .tls13
                case "TLS10", "TLS11":
                    throw fail(key, "\"\(v)\" is not supported (TLS 1.0 and 1.1 are never offered); use TLS12 or TLS13")
                default:
                    throw fail(key, "\"\(v)\" is not a TLS version (accepted: TLS12, TLS13)")
                }
            case "cert", "key":
                throw fail(key, "inline PEM is not supported by mcescan-exporter; put it in a file and use \(name)_file")
            case "client_ca_file", "client_allowed_sans", "cipher_suites", "curve_preferences", "max_version",
                 "prefer_server_cipher_suites":
                throw fail(key, "not supported by mcescan-exporter (GnuTLS defaults apply, TLS 1.2 minimum); remove it")
            default:
                throw fail(key, "unknown key (supported: cert_file, key_file, client_auth_type: NoClientCert, min_version)")
            }
        }
        guard let certFile else { throw fail("\(section).cert_file", "is required when tls_server_config is set") }
        guard let keyFile else { throw fail("\(section).key_file", "is required when tls_server_config is set") }
        let certPath = resolve(certFile, relativeTo: file)
        let keyPath = resolve(keyFile, relativeTo: file)

        let certPEM: String
        do { certPEM = try loadFile(certPath) } catch {
            throw fail("\(section).cert_file", "cannot read \(certPath): \(error.message)")
        }
        let keyPEM: String
        do { keyPEM = try loadFile(keyPath) } catch {
            throw fail("\(section).key_file", "cannot read \(keyPath): \(error.message)")
        }
        var expires = time_t(0)
        let count = certPEM.withCString { mcescan_tls_check_certificates($0, strlen($0), &expires) }
        guard count > 0 else {
            throw fail("\(section).cert_file", "\(certPath) holds no usable PEM certificate: \(gnutlsError(count))")
        }
        let keyRC = keyPEM.withCString { mcescan_tls_check_key($0, strlen($0)) }
        guard keyRC == 0 else {
            throw fail("\(section).key_file", "\(keyPath) holds no usable unencrypted PEM private key: \(gnutlsError(keyRC))")
        }
        let pairRC = certPEM.withCString { c in keyPEM.withCString { k in mcescan_tls_check_pair(c, strlen(c), k, strlen(k)) } }
        guard pairRC == 0 else {
            throw fail("\(section).key_file", "\(keyPath) and cert_file \(certPath) do not load together: \(gnutlsError(pairRC))")
        }
        let tls = TLS(certFile: certPath, keyFile: keyPath, certificatePEM: certPEM, keyPEM: keyPEM,
                      minVersion: minVersion, certificateExpires: Int(expires))
        let priorityRC = mcescan_tls_check_priorities(tls.priorities)
        guard priorityRC == 0 else {
            throw fail("\(section).min_version", "this GnuTLS rejects the priority string \"\(tls.priorities)\": \(gnutlsError(priorityRC))")
        }
        if Int(expires) <= now {
            warnings.append("the TLS certificate in \(certPath) expired (notAfter \(expires) s since the epoch); clients will reject it")
        }
        var st = stat()
        if stat(keyPath, &st) == 0, st.st_mode & 0o004 != 0 {
            warnings.append("the TLS key \(keyPath) is readable by every user (chmod 600 or 640 it)")
        }
        return tls
    }

    static func parseUsers(_ node: Node, warnings: inout [String], _ fail: (String?, String) -> WebConfigError) throws(WebConfigError) -> [String: String] {
        let section = "basic_auth_users"
        guard case .mapping(let map) = node else {
            if case .scalar(let s) = node, isNull(s) {
                throw fail(section, "is empty, so authentication would be off; add a user (name: bcrypt hash) or remove the key")
            }
            throw fail(section, "must be a mapping of user name to bcrypt hash")
        }
        guard map.count > 0 else {
            throw fail(section, "is empty, so authentication would be off; add a user (name: bcrypt hash) or remove the key")
        }
        var users: [String: String] = [:]
        for (keyNode, value) in map {
            let name = try scalarKey(keyNode, parent: section, fail)
            let key = "\(section).\(name)"
            guard users[name] == nil else { throw fail(key, "appears twice") }
            guard !name.isEmpty else { throw fail(key, "a user name may not be empty") }
            guard !name.contains(":") else { throw fail(key, "a user name may not contain ':' (HTTP basic auth splits at the first colon)") }
            guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
                throw fail(key, "a user name may not contain control characters")
            }
            guard let hash = try stringValue(value, key: key, fail), !hash.isEmpty else {
                throw fail(key, "needs a bcrypt hash (make one with: htpasswd -nbBC 10 \(name) 'PASSWORD')")
            }
            guard let cost = BcryptHash.cost(of: hash) else {
                throw fail(key, "is not a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-31, 60 characters); make one with: htpasswd -nbBC 10 \(name) 'PASSWORD'")
            }
            if cost < 10 {
                warnings.append("the bcrypt cost of user \(name) is \(cost); 10 or more is recommended")
            }
            users[name] = hash
        }
        return users
    }

    /// A YAML null (`~`, `null` or nothing). `Node.tag` resolves the implicit tag; the scalar's
    /// own `tag` does not.
    private static func isNull(_ s: Node.Scalar) -> Bool {
        Node.scalar(s).tag.description == "tag:yaml.org,2002:null"
    }

    private static func scalarKey(_ node: Node, parent: String?, _ fail: (String?, String) -> WebConfigError) throws(WebConfigError) -> String {
        guard case .scalar(let s) = node else {
            throw fail(parent, "has a key that is not a plain string" + (node.mark.map { " (line \($0.line))" } ?? ""))
        }
        return s.string
    }

    /// The scalar's text, nil for YAML null; an error for mappings and sequences.
    private static func stringValue(_ node: Node, key: String, _ fail: (String?, String) -> WebConfigError) throws(WebConfigError) -> String? {
        guard case .scalar(let s) = node else { throw fail(key, "must be a string") }
        return isNull(s) ? nil : s.string
    }

    private static func nonEmptyString(_ node: Node, key: String, _ fail: (String?, String) -> WebConfigError) throws(WebConfigError) -> String {
        guard let v = try stringValue(node, key: key, fail), !v.isEmpty else { throw fail(key, "must be a non-empty path") }
        return v
    }

    /// `path` as is when absolute, else relative to the directory holding `configFile`.
    static func resolve(_ path: String, relativeTo configFile: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = configFile.lastIndex(of: "/") else { return path }
        return String(configFile[...slash]) + path
    }

    private static func yamlErrorText(_ error: any Error) -> String {
        // YamlError's description carries line:column and a snippet; keep the first line.
        let text = "\(error)"
        return String(text.split(separator: "\n", maxSplits: 1).first ?? Substring(text))
    }
}

/// Checks on bcrypt hash strings (the modular crypt format `$2b$10$<53 chars>`).
public enum BcryptHash {
    static let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// The cost of a well-formed bcrypt hash (`$2a$`, `$2b$` or `$2y$`, cost 04-31, 22 salt and 31
    /// hash characters), or nil.
    public static func cost(of hash: String) -> Int? {
        let b = Array(hash.utf8)
        guard b.count == 60, b[0] == UInt8(ascii: "$"), b[1] == UInt8(ascii: "2"),
              [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(b[2]),
              b[3] == UInt8(ascii: "$"), b[6] == UInt8(ascii: "$"),
              let tens = digit(b[4]), let ones = digit(b[5]) else { return nil }
        let cost = tens * 10 + ones
        guard (4...31).contains(cost), b[7...].allSatisfy({ alphabet.contains($0) }) else { return nil }
        return cost
    }

    private static func digit(_ c: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) ? Int(c - UInt8(ascii: "0")) : nil
    }
}

/// Why a small file could not be read.
public struct FileReadError: Error, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// Reads a small text file (config, PEM) whole; refuses files over 1 MiB.
public func readSmallFile(_ path: String) throws(FileReadError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileReadError(String(cString: strerror(errno))) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw FileReadError(String(cString: strerror(errno))) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileReadError("not a regular file") }
    let limit = 1 << 20
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw FileReadError(String(cString: strerror(errno)))
        }
        if n == 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
        guard bytes.count <= limit else { throw FileReadError("larger than 1 MiB") }
    }
    guard let text = String(validating: bytes, as: UTF8.self) else { throw FileReadError("not UTF-8 text") }
    guard !text.utf8.contains(0) else { throw FileReadError("contains a NUL byte") }
    return text
}

/// GnuTLS's text for an error code.
func gnutlsError(_ code: Int32) -> String {
    guard let text = gnutls_strerror(code) else { return "GnuTLS error \(code)" }
    return String(cString: text)
}
