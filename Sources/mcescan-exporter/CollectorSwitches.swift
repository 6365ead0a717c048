import ArgumentParser

// `--collector.<name>` / `--no-collector.<name>` for collectors whose names contain an
// underscore. ArgumentParser's `inversion: .prefixedNo` spells those `--no_collector.<name>`,
// which is not the spelling Prometheus exporters use, so each pair is an enumerable flag whose
// two spellings are given explicitly; the last one on the command line wins.

/// `--collector.memory_failure` / `--no-collector.memory_failure`.
enum MemoryFailureSwitch: String, EnumerableFlag {
    case on, off
    static func name(for value: Self) -> NameSpecification {
        .customLong(value == .on ? "collector.memory_failure" : "no-collector.memory_failure")
    }
    static func help(for value: Self) -> ArgumentHelp? {
        value == .on ? "Per-node kernel memory-failure statistics (sysfs nodeN/memory_failure/)." : "Turn the memory_failure collector off."
    }
}

/// `--collector.edac_scrub` / `--no-collector.edac_scrub`.
enum EdacScrubSwitch: String, EnumerableFlag {
    case on, off
    static func name(for value: Self) -> NameSpecification {
        .customLong(value == .on ? "collector.edac_scrub" : "no-collector.edac_scrub")
    }
    static func help(for value: Self) -> ArgumentHelp? {
        value == .on ? "EDAC scrub control state (sysfs bus/edac/devices/*/scrub*/)." : "Turn the edac_scrub collector off."
    }
}
