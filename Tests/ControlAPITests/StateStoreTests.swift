import Testing
@testable import MetricsExporter

#if canImport(Glibc)
import Glibc
#endif

func makeTempDir() -> String {
    var template = Array("/tmp/mcescan-state-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

func writeFile(_ path: String, _ text: String) {
    let f = fopen(path, "w")!
    fputs(text, f)
    fclose(f)
}

@Suite("State file")
struct StateStoreTests {
    @Test("no file: nil; save then load round-trips; the file is 0600 and complete")
    func roundTrip() throws {
        let dir = makeTempDir()
        defer { _ = system("rm -rf \(dir)") }
        let store = StateStore(directory: dir)
        #expect(try store.load() == nil)
        let state = [0: PersistedKnobs(pagesToScan: 8192, sleepMillis: 500, type: 7), 3: PersistedKnobs(pagesToScan: 0, sleepMillis: 0, type: 0)]
        try store.save(state)
        #expect(try store.load() == state)
        var st = stat()
        stat(store.path, &st)
        #expect(st.st_mode & 0o777 == 0o600)
        // No temp file is left behind.
        #expect(access(store.path + ".tmp.\(getpid())", F_OK) != 0)
    }

    @Test("a bad file stops start-up with a message naming the file, the problem and the fix", arguments: [
        ("", "not valid JSON"),
        ("{\"version\":1,\"nodes\":{\"0\":{\"pages_to_scan\":1", "not valid JSON"),
        ("[]", "the top level is not an object"),
        ("{\"nodes\":{}}", "no \"version\""),
        ("{\"version\":2,\"nodes\":{}}", "version 2 is not supported"),
        ("{\"version\":1}", "no \"nodes\""),
        ("{\"version\":1,\"nodes\":{\"x\":{}}}", "node key \"x\" is not a node number"),
        ("{\"version\":1,\"nodes\":{\"0\":{\"pages_to_scan\":1,\"type\":1}}}", "needs pages_to_scan, scan_sleep_millisecs and type"),
        ("{\"version\":1,\"nodes\":{\"0\":{\"pages_to_scan\":\"1\",\"scan_sleep_millisecs\":1,\"type\":1}}}", "\"pages_to_scan\" is not an integer"),
        ("{\"version\":1,\"nodes\":{},\"extra\":1}", "unknown key \"extra\""),
        ("{\"version\":1,\"version\":1,\"nodes\":{}}", "appears twice"),
    ])
    func corrupt(_ content: String, _ fragment: String) {
        let dir = makeTempDir()
        defer { _ = system("rm -rf \(dir)") }
        writeFile(dir + "/state.json", content)
        let store = StateStore(directory: dir)
        #expect {
            _ = try store.load()
        } throws: { error in
            let text = "\(error)"
            return text.contains(fragment) && text.contains(dir + "/state.json") && text.contains("move it away")
        }
    }

    @Test("a directory where the file belongs is an error, not 'no state'")
    func directory() {
        let dir = makeTempDir()
        defer { _ = system("rm -rf \(dir)") }
        mkdir(dir + "/state.json", 0o700)
        #expect(throws: StateFileError.self) { _ = try StateStore(directory: dir).load() }
    }

    /// A full file system: a tiny tmpfs whose space is taken before the save.
    @Test("a write that fails names the file and says the previous state is kept, not the start-up remedy")
    func fullDisk() throws {
        let dir = makeTempDir()
        defer { _ = system("umount \(dir) 2>/dev/null; rm -rf \(dir)") }
        try #require(system("mount -t tmpfs -o size=16k tmpfs \(dir)") == 0, "needs root to mount a tmpfs")
        let store = StateStore(directory: dir)
        let before = [0: PersistedKnobs(pagesToScan: 1, sleepMillis: 2, type: 1)]
        try store.save(before)
        _ = system("dd if=/dev/zero of=\(dir)/fill bs=4k count=64 2>/dev/null")
        #expect {
            try store.save([0: PersistedKnobs(pagesToScan: 99, sleepMillis: 2, type: 1)])
        } throws: { error in
            guard let e = error as? StateFileError else { return false }
            let text = e.description
            return e.operation == .write && text.contains(store.path) && text.contains("No space left on device")
                && text.contains("still holds the previous state") && !text.contains("move it away")
        }
        #expect(try store.load() == before)
        #expect(access(store.path + ".tmp.\(getpid())", F_OK) != 0)
    }

    @Test("temporary files of a killed writer are removed at start; a live writer's are kept")
    func staleTemporaries() throws {
        let dir = makeTempDir()
        defer { _ = system("rm -rf \(dir)") }
        // 4194305 is above the largest pid_max, so no process has it; pid 1 is always alive.
        for name in ["state.json.tmp.4194305", "state.json.tmp.\(getpid())", "state.json.tmp.1", "state.json.tmp.x", "other.tmp.4194305"] {
            writeFile("\(dir)/\(name)", "{")
        }
        let removed = StateStore(directory: dir).removeStaleTemporaries()
        #expect(Set(removed) == ["\(dir)/state.json.tmp.4194305", "\(dir)/state.json.tmp.\(getpid())"])
        #expect(access("\(dir)/state.json.tmp.1", F_OK) == 0)
        #expect(access("\(dir)/state.json.tmp.x", F_OK) == 0)
        #expect(access("\(dir)/other.tmp.4194305", F_OK) == 0)
    }
}
