/// Chooses the exposition format and compression from request headers (RFC 9110 §12.5).
public enum ContentNegotiation {
    /// The format to answer an `Accept` header with: OpenMetrics 1.0.0 only when the header gives
    /// it a strictly higher quality than text 0.0.4, else 0.0.4 (also for a missing, empty or
    /// unparsable header, and when neither is acceptable: a scraper always understands 0.0.4).
    public static func format(accept: String?) -> ExpositionFormat {
        guard let accept, !accept.isEmpty else { return .text004 }
        let ranges = parseAccept(accept)
        let om = quality(of: MediaType(type: "application", subtype: "openmetrics-text", version: "1.0.0"), in: ranges)
        let text = quality(of: MediaType(type: "text", subtype: "plain", version: "0.0.4"), in: ranges)
        return om > text ? .openMetrics100 : .text004
    }

    /// Whether an `Accept-Encoding` header allows gzip (`gzip` or `*` with q > 0, not overridden
    /// by an explicit `gzip;q=0`).
    public static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var gzip: Double? = nil
        var wildcard: Double? = nil
        for item in acceptEncoding.split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let coding = parts.first?.trimmingWhitespace().lowercased(), !coding.isEmpty else { continue }
            let q = parts.dropFirst().compactMap(parseQ).last ?? 1
            switch coding {
            case "gzip", "x-gzip": gzip = max(gzip ?? 0, q)
            case "*": wildcard = q
            default: break
            }
        }
        if let gzip { return gzip > 0 }
        return (wildcard ?? 0) > 0
    }

    // MARK: - Accept parsing

    struct MediaType {
        var type: String
        var subtype: String
        var version: String
    }

    struct MediaRange: Equatable {
        var type: String      // lower-cased; "*" for a wildcard
        var subtype: String   // lower-cased; "*" for a wildcard
        var params: [String: String]  // lower-cased names, without q
        var q: Double
    }

    static func parseAccept(_ header: String) -> [MediaRange] {
        var ranges: [MediaRange] = []
        for item in splitOutsideQuotes(header, separator: ",") {
            let parts = splitOutsideQuotes(item, separator: ";")
            guard let mediaType = parts.first?.trimmingWhitespace(), !mediaType.isEmpty else { continue }
            let typeParts = mediaType.lowercased().split(separator: "/", omittingEmptySubsequences: false)
            guard typeParts.count == 2, !typeParts[0].isEmpty, !typeParts[1].isEmpty else { continue }
            let type = String(typeParts[0]), subtype = String(typeParts[1])
            if type == "*" && subtype != "*" { continue }  // "*/plain" is not a media range
            var params: [String: String] = [:]
            var q = 1.0
            var valid = true
            for p in parts.dropFirst() {
                let kv = p.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { continue }
                let name = kv[0].trimmingWhitespace().lowercased()
                var value = kv[1].trimmingWhitespace()
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                    value = String(value.dropFirst().dropLast())
                }
                if name == "q" {
                    guard let parsed = parseQValue(value) else { valid = false; break }
                    q = parsed
                } else {
                    params[name] = value
                }
            }
            if valid { ranges.append(MediaRange(type: type, subtype: subtype, params: params, q: q)) }
        }
        return ranges
    }

    /// The quality of `media` under the most specific matching range (exact type with a matching
    /// version beats exact type, which beats `type/*`, which beats `*/*`); 0 when none matches.
    static func quality(of media: MediaType, in ranges: [MediaRange]) -> Double {
        var best: (specificity: Int, q: Double)? = nil
        for r in ranges {
            var specificity: Int
            if r.type == "*" {
                specificity = 0
            } else if r.type != media.type {
                continue
            } else if r.subtype == "*" {
                specificity = 1
            } else if r.subtype != media.subtype {
                continue
            } else {
                specificity = 2
                if let v = r.params["version"] {
                    guard v == media.version else { continue }
                    specificity = 3
                }
            }
            if best == nil || specificity > best!.specificity {
                best = (specificity, r.q)
            }
        }
        return best?.q ?? 0
    }

    private static func parseQ(_ param: Substring) -> Double? {
        let kv = param.split(separator: "=", maxSplits: 1)
        guard kv.count == 2, kv[0].trimmingWhitespace().lowercased() == "q" else { return nil }
        return parseQValue(kv[1].trimmingWhitespace()) ?? 0
    }

    /// RFC 9110 qvalue: 0, 1, or 0.xxx / 1.000 with at most three decimals.
    static func parseQValue(_ s: String) -> Double? {
        guard let v = Double(s), v >= 0, v <= 1, s.utf8.count <= 5 else { return nil }
        return v
    }

    private static func splitOutsideQuotes(_ s: some StringProtocol, separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        for c in s {
            if c == "\"" { quoted.toggle() }
            if c == separator && !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        return parts
    }
}
