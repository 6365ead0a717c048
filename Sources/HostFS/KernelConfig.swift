/// Whether a kernel config text (`/proc/config.gz` unpacked, `/boot/config-<release>`) sets
/// `option` to `y`. An option the config does not mention is off, as Kconfig treats it.
public func kernelConfigEnabled(_ text: String, option: String) -> Bool {
    for line in text.split(separator: "\n") {
        if line == "\(option)=y" { return true }
        if line == "# \(option) is not set" { return false }
    }
    return false
}
