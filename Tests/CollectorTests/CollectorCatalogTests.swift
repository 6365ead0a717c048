import Testing
@testable import MetricsExporter

/// `--collector.*` parsing against the catalog: every spelling, last wins, and errors that name the flag.
@Suite struct CollectorCatalogTests {
    func enabled(_ args: [String]) throws -> [String] { try CollectorSelection(parsing: args).enabled.map(\.name) }

    @Test func defaultsEnableEveryCollector() throws {
        #expect(try enabled([]) == ["process", "memory_failure", "hwpoison", "edac_scrub"])
        #expect(try CollectorSelection(parsing: []).settings["hwpoison"]?["interval"] == "60s")
    }

    @Test func lastSpellingWins() throws {
        #expect(try enabled(["--no-collector.hwpoison", "--no-collector.edac_scrub"]) == ["process", "memory_failure"])
        #expect(try enabled(["--no-collector.memory_failure", "--collector.memory_failure"]).contains("memory_failure"))
        #expect(try !enabled(["--collector.process", "--no-collector.process"]).contains("process"))
    }

    @Test func optionValueBothSpellings() throws {
        #expect(try CollectorSelection(parsing: ["--collector.hwpoison.interval", "5m"]).settings["hwpoison"]?["interval"] == "5m")
        #expect(try CollectorSelection(parsing: ["--collector.hwpoison.interval=2s"]).settings["hwpoison"]?["interval"] == "2s")
    }

    @Test(arguments: [
        (["--collector.bogus"], "Unknown option '--collector.bogus'"),
        (["--no-collector.bogus"], "Unknown option '--no-collector.bogus'"),
        (["--collector.hwpoison.bogus", "1"], "Unknown option '--collector.hwpoison.bogus'"),
        (["--collector.hwpoison.interval", "0s"], "--collector.hwpoison.interval: 0s is out of range (1s-24h)"),
        (["--collector.hwpoison.interval=1x"], "--collector.hwpoison.interval: \"1x\" is not a duration"),
        (["--collector.hwpoison.interval"], "--collector.hwpoison.interval: missing value"),
        (["--bogus"], "Unknown option '--bogus'"),
    ])
    func refused(args: [String], fragment: String) {
        #expect { try CollectorSelection(parsing: args) } throws: { error in
            (error as? FlagValueError)?.message.contains(fragment) == true
        }
    }

    @Test func helpListsEveryFlagAndDefault() {
        let help = CollectorCatalog.helpText()
        for d in CollectorCatalog.all {
            #expect(help.contains("\(d.flag)/--no-collector.\(d.name)"))
        }
        #expect(help.contains("--collector.hwpoison.interval <duration>"))
        #expect(help.contains("(default: 60s)"))
    }
}
