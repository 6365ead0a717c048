import HostFS

#if canImport(Glibc)
import Glibc
#endif

/// The checks behind `DoctorReport`, one per capability: each reads the host files (or asks the
/// probe) and says what works, what does not and why.
struct DoctorChecks {
    let sysfs: SysFS
    let procfs: ProcFS
    let probe: DoctorProbe

    private func nodeIDs() -> [Int]? {
        guard let names = try? sysfs.listIfPresent("devices/system/node") else { return nil }
        return names.compactMap(MemoryBlockLayout.nodeIndex).sorted()
    }

    // MARK: nodes and CPUs

    func topology() -> CapabilityCheck {
        let checked = ["/sys/devices/system/node/online", "/sys/devices/system/node/has_memory",
                       "/sys/devices/system/node/node*/cpulist"]
        guard sysfs.isDirectory("devices/system/node") else {
            return CapabilityCheck(
                name: "numa_topology", status: .limited,
                detail: "No /sys/devices/system/node: the kernel has no NUMA support, so all memory is treated as one node 0.",
                remedy: "Nothing to do on a single-node host; per-node scanning needs a kernel with CONFIG_NUMA=y.",
                checked: checked)
        }
        guard let onlineText = try? sysfs.readString("devices/system/node/online", limit: 4096),
              let online = try? parseList(onlineText), !online.isEmpty else {
            return CapabilityCheck(
                name: "numa_topology", status: .missing,
                detail: "/sys/devices/system/node/online is unreadable or malformed, so the nodes to scan are unknown.",
                remedy: "Check that sysfs is mounted (and --path.sysfs points at it).", checked: checked)
        }
        let withMemory = (try? sysfs.readString("devices/system/node/has_memory", limit: 4096)).flatMap { try? parseList($0) } ?? online
        var parts: [String] = []
        var cpuless: [Int] = []
        for node in online {
            let cpus = (try? sysfs.readString("devices/system/node/node\(node)/cpulist", limit: 4096)).flatMap { try? parseList($0) } ?? []
            if cpus.isEmpty { cpuless.append(node) }
            parts.append("node\(node) CPUs \(cpus.isEmpty ? "none" : formatKernelList(cpus))")
        }
        var detail = "\(online.count) node\(online.count == 1 ? "" : "s") online (\(formatKernelList(online))), with memory: \(withMemory.isEmpty ? "none" : formatKernelList(withMemory)); " + parts.joined(separator: ", ") + "."
        if !cpuless.isEmpty {
            detail += " CPU-less node\(cpuless.count == 1 ? "" : "s") \(formatKernelList(cpuless)) will be scanned from the nearest node's CPUs."
        }
        return CapabilityCheck(name: "numa_topology", status: .ok, detail: detail, checked: checked)
    }

    // MARK: mlock limit

    func mlock() -> CapabilityCheck {
        let checked = ["getrlimit(RLIMIT_MEMLOCK)", "CAP_IPC_LOCK in CapEff of /proc/self/status"]
        let arena = formatBytes(probe.arenaBytes)
        let limit = probe.memlockLimit.map(formatBytes) ?? "unlimited"
        if probe.capIPCLock {
            return CapabilityCheck(name: "mlock_limit", status: .ok,
                                   detail: "CAP_IPC_LOCK is held, so the \(arena) arena per node can be locked (RLIMIT_MEMLOCK \(limit) does not apply).",
                                   checked: checked)
        }
        if probe.memlockLimit.map({ $0 >= probe.arenaBytes }) ?? true {
            return CapabilityCheck(name: "mlock_limit", status: .ok,
                                   detail: "RLIMIT_MEMLOCK is \(limit), enough to lock one \(arena) arena.", checked: checked)
        }
        return CapabilityCheck(
            name: "mlock_limit", status: .limited,
            detail: "RLIMIT_MEMLOCK is \(limit), below the \(arena) arena, and CAP_IPC_LOCK is not held: arenas run unlocked (they may be swapped; region_locked_bytes reads 0).",
            remedy: "Set LimitMEMLOCK=infinity in the systemd unit (or ulimit -l unlimited), or grant CAP_IPC_LOCK; or lower --scan.arena-bytes.",
            checked: checked)
    }

    // MARK: pagemap PFN access

    func pagemap() -> CapabilityCheck {
        let checked = ["/proc/self/pagemap", "CAP_SYS_ADMIN in CapEff of /proc/self/status"]
        guard procfs.exists("self/pagemap") else {
            return CapabilityCheck(
                name: "pagemap_pfn", status: .missing,
                detail: "/proc/self/pagemap does not exist (kernel without CONFIG_PROC_PAGE_MONITOR): no physical addresses, mcescan_coverage_ratio is absent.",
                remedy: "Use a kernel built with CONFIG_PROC_PAGE_MONITOR=y.", checked: checked)
        }
        guard probe.capSysAdmin else {
            return CapabilityCheck(
                name: "pagemap_pfn", status: .limited,
                detail: "/proc/self/pagemap exists, but without CAP_SYS_ADMIN the kernel reports every PFN as 0: no physical addresses in events, mcescan_coverage_ratio is absent.",
                remedy: "Run as root or grant CAP_SYS_ADMIN (AmbientCapabilities=CAP_SYS_ADMIN in the systemd unit).",
                checked: checked)
        }
        return CapabilityCheck(name: "pagemap_pfn", status: .ok,
                               detail: "/proc/self/pagemap exists and CAP_SYS_ADMIN is held: PFNs are visible, coverage is measured.",
                               checked: checked)
    }

    // MARK: kpageflags

    func kpageflags() -> CapabilityCheck {
        let checked = ["/proc/kpageflags (opened read-only, not read)", "/sys/devices/system/memory/block_size_bytes",
                       "/sys/devices/system/memory/memory*/node*", "/sys/devices/system/node/node*/memory*"]
        let path = procfs.path("kpageflags")
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let err = errno
            if err == ENOENT || err == ENOTDIR {
                return CapabilityCheck(
                    name: "kpageflags", status: .missing,
                    detail: "/proc/kpageflags does not exist (kernel without CONFIG_PROC_PAGE_MONITOR): no hwpoison census, mcescan_kernel_hwpoison_pages is absent.",
                    remedy: "Use a kernel built with CONFIG_PROC_PAGE_MONITOR=y.", checked: checked)
            }
            return CapabilityCheck(
                name: "kpageflags", status: .limited,
                detail: "/proc/kpageflags cannot be opened (\(String(cString: strerror(err)))): the hwpoison census fails (scrape_collector_success{collector=\"hwpoison\"} 0).",
                remedy: "Run as root: the kernel makes /proc/kpageflags readable by root only (0400).", checked: checked)
        }
        close(fd)
        let layout: MemoryBlockLayout?
        do {
            layout = try MemoryBlockLayout.read(sysfs: sysfs)
        } catch {
            return CapabilityCheck(
                name: "kpageflags", status: .limited,
                detail: "/proc/kpageflags is readable, but the memory-block layout is not (\(error.message)): no census.",
                remedy: "Check that sysfs is mounted (and --path.sysfs points at it).", checked: checked)
        }
        guard let layout, !layout.blocks.isEmpty else {
            return CapabilityCheck(
                name: "kpageflags", status: .limited,
                detail: "/proc/kpageflags is readable, but /sys/devices/system/memory has no memory blocks with a node (kernel without CONFIG_MEMORY_HOTPLUG): PFNs cannot be mapped to nodes, no census.",
                remedy: "Use a kernel built with CONFIG_MEMORY_HOTPLUG=y (memory blocks in sysfs).", checked: checked)
        }
        let nodes = Set(layout.blocks.map(\.node)).sorted()
        return CapabilityCheck(
            name: "kpageflags", status: .ok,
            detail: "/proc/kpageflags is readable; \(layout.blocks.count) memory block\(layout.blocks.count == 1 ? "" : "s") of \(formatBytes(layout.blockSizeBytes)) map PFNs to node\(nodes.count == 1 ? "" : "s") \(formatKernelList(nodes)).",
            checked: checked)
    }

    // MARK: memory_failure stats

    func memoryFailure() -> CapabilityCheck {
        let checked = ["/sys/devices/system/node/node*/memory_failure/{total,ignored,failed,delayed,recovered}"]
        let nodes = nodeIDs() ?? []
        var with: [Int] = []
        var total: UInt64 = 0
        var unreadable: [String] = []
        for node in nodes where sysfs.isDirectory("devices/system/node/node\(node)/memory_failure") {
            with.append(node)
            do {
                for r in MemoryFailureCollector.results {
                    let rel = "devices/system/node/node\(node)/memory_failure/\(r)"
                    total += try MemoryFailureStats.parseCount(sysfs.readBytes(rel, limit: 64), path: "/sys/" + rel)
                }
            } catch {
                unreadable.append("node\(node): \(error.message)")
            }
        }
        if with.isEmpty {
            return CapabilityCheck(
                name: "memory_failure_stats", status: .missing,
                detail: "No /sys/devices/system/node/node*/memory_failure/: the kernel keeps no per-node memory-failure statistics, mcescan_kernel_memory_failure_pages_total is absent.",
                remedy: "Needs Linux 6.3 or later built with CONFIG_MEMORY_FAILURE=y.", checked: checked)
        }
        if !unreadable.isEmpty {
            return CapabilityCheck(
                name: "memory_failure_stats", status: .limited,
                detail: "Statistics exist on node\(with.count == 1 ? "" : "s") \(formatKernelList(with)) but cannot be read: \(unreadable.joined(separator: "; ")).",
                remedy: "Check sysfs permissions; the memory_failure collector reports success 0 until this is fixed.", checked: checked)
        }
        let missingNodes = nodes.filter { !with.contains($0) }
        let detail = "Per-node statistics on node\(with.count == 1 ? "" : "s") \(formatKernelList(with)): \(total) raw poisoned page\(total == 1 ? "" : "s") handled since boot."
        if !missingNodes.isEmpty {
            return CapabilityCheck(name: "memory_failure_stats", status: .limited,
                                   detail: detail + " Node\(missingNodes.count == 1 ? "" : "s") \(formatKernelList(missingNodes)) ha\(missingNodes.count == 1 ? "s" : "ve") none.",
                                   remedy: "Expected only for nodes the kernel does not manage memory on; otherwise report it as a kernel bug.",
                                   checked: checked)
        }
        return CapabilityCheck(name: "memory_failure_stats", status: .ok, detail: detail, checked: checked)
    }

    // MARK: hugetlb pool

    func hugetlb() -> CapabilityCheck {
        let checked = ["/sys/devices/system/node/node*/hugepages/hugepages-*/{nr_hugepages,free_hugepages}"]
        var anyPoolDir = false
        var parts: [String] = []
        var usable: [Int] = []
        for node in nodeIDs() ?? [] {
            let base = "devices/system/node/node\(node)/hugepages"
            guard let sizes = try? sysfs.listIfPresent(base) else { continue }
            var nodeParts: [String] = []
            for size in sizes where size.hasPrefix("hugepages-") {
                anyPoolDir = true
                let nr = (try? sysfs.readUInt64("\(base)/\(size)/nr_hugepages")) ?? 0
                let free = (try? sysfs.readUInt64("\(base)/\(size)/free_hugepages")) ?? 0
                if nr > 0 {
                    nodeParts.append("\(size.dropFirst(10)) \(nr) (\(free) free)")
                    if free > 0 { usable.append(node) }
                }
            }
            parts.append("node\(node) " + (nodeParts.isEmpty ? "empty" : nodeParts.joined(separator: ", ")))
        }
        guard anyPoolDir else {
            return CapabilityCheck(
                name: "hugetlb_pool", status: .missing,
                detail: "No per-node hugetlb pools under /sys/devices/system/node/node*/hugepages (kernel without CONFIG_HUGETLB_PAGE): memory type hugetlb is unavailable.",
                remedy: "Use a kernel built with CONFIG_HUGETLB_PAGE=y.", checked: checked)
        }
        let detail = "Huge page pools: " + parts.joined(separator: "; ") + "."
        if usable.isEmpty {
            return CapabilityCheck(
                name: "hugetlb_pool", status: .limited,
                detail: detail + " No free huge pages: memory type hugetlb is unavailable (reported, not an error).",
                remedy: "Reserve huge pages per node, e.g. echo 16 > /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages (or hugepages= at boot).",
                checked: checked)
        }
        return CapabilityCheck(name: "hugetlb_pool", status: .ok,
                               detail: detail + " Memory type hugetlb can scan node\(usable.count == 1 ? "" : "s") \(formatKernelList(usable)).",
                               checked: checked)
    }

    // MARK: EDAC scrub

    func edacScrub() -> CapabilityCheck {
        let checked = ["/sys/bus/edac/devices/*/scrub*/{enable_background,current_cycle_duration,min_cycle_duration,max_cycle_duration}"]
        let devices = (try? sysfs.listIfPresent("bus/edac/devices")) ?? nil
        var parts: [String] = []
        for device in devices ?? [] {
            for scrub in (try? sysfs.list("bus/edac/devices/\(device)")) ?? [] where EdacScrub.isScrubInstance(scrub) {
                let base = "bus/edac/devices/\(device)/\(scrub)"
                var facts: [String] = []
                if let on = try? sysfs.readUInt64("\(base)/enable_background") { facts.append("background \(on == 1 ? "on" : "off")") }
                if let cur = try? sysfs.readUInt64("\(base)/current_cycle_duration") { facts.append("cycle \(formatDuration(Double(cur)))") }
                if let lo = try? sysfs.readUInt64("\(base)/min_cycle_duration"),
                   let hi = try? sysfs.readUInt64("\(base)/max_cycle_duration") {
                    facts.append("range \(formatDuration(Double(lo)))-\(formatDuration(Double(hi)))")
                }
                parts.append("\(device)/\(scrub)" + (facts.isEmpty ? "" : " (" + facts.joined(separator: ", ") + ")"))
            }
        }
        guard !parts.isEmpty else {
            let why = devices.map { $0.isEmpty ? "/sys/bus/edac/devices is empty" : "EDAC devices \($0.joined(separator: ", ")) offer no scrub control" }
                ?? "No /sys/bus/edac/devices"
            return CapabilityCheck(
                name: "edac_scrub", status: .missing,
                detail: "\(why): hardware patrol scrub is not visible to the OS, mcescan_edac_scrub_* are absent.",
                remedy: "Needs Linux 6.15+ with EDAC scrub support and a driver that offers it (CXL patrol scrub/ECS, ACPI RAS2); otherwise patrol scrub is set in firmware (BIOS/BMC).",
                checked: checked)
        }
        return CapabilityCheck(name: "edac_scrub", status: .ok,
                               detail: "Scrub control: " + parts.joined(separator: "; ") + ".", checked: checked)
    }

    // MARK: MADV_HWPOISON

    /// `CONFIG_MEMORY_FAILURE` from the kernel config: true/false, nil when no config is readable.
    /// Reads `<procfs>/config.gz` (CONFIG_IKCONFIG_PROC), else `probe.bootConfigPath`.
    func kernelConfigMemoryFailure() -> (value: Bool?, source: String?) {
        var text: String?
        var source: String?
        if let gz = try? procfs.readBytes("config.gz", limit: 4 << 20), let raw = Gzip.decompress(gz) {
            text = String(decoding: raw, as: UTF8.self)
            source = "/proc/config.gz"
        } else if let boot = probe.bootConfigPath, let raw = try? HostTree(root: "/").readString(boot, limit: 4 << 20) {
            text = raw
            source = boot
        }
        guard let text else { return (nil, nil) }
        return (kernelConfigEnabled(text, option: "CONFIG_MEMORY_FAILURE"), source)
    }

    func madvHwpoison() -> CapabilityCheck {
        var checked = ["/proc/config.gz"]
        if let boot = probe.bootConfigPath { checked.append(boot) }
        checked += ["/proc/sys/vm/memory_failure_recovery", "/sys/devices/system/node/node*/memory_failure",
                    "CAP_SYS_ADMIN in CapEff of /proc/self/status"]
        var evidence: [String] = []
        let config = kernelConfigMemoryFailure()
        if let value = config.value, let source = config.source {
            evidence.append(value ? "CONFIG_MEMORY_FAILURE=y in \(source)" : "CONFIG_MEMORY_FAILURE not set in \(source)")
        } else {
            evidence.append("no readable kernel config")
        }
        let recovery = try? procfs.readUInt64("sys/vm/memory_failure_recovery")
        if let recovery {
            evidence.append("vm.memory_failure_recovery=\(recovery)")
        } else {
            evidence.append("no /proc/sys/vm/memory_failure_recovery")
        }
        let statNodes = (nodeIDs() ?? []).filter { sysfs.isDirectory("devices/system/node/node\($0)/memory_failure") }
        evidence.append(statNodes.isEmpty ? "no per-node memory_failure stats" : "memory_failure stats on node\(statNodes.count == 1 ? "" : "s") \(formatKernelList(statNodes))")
        evidence.append("CAP_SYS_ADMIN \(probe.capSysAdmin ? "held" : "not held")")
        let supported: Bool
        if let value = config.value {
            supported = value
        } else {
            supported = recovery != nil || !statNodes.isEmpty
        }
        let checkedText = " Checked without poisoning anything: " + evidence.joined(separator: "; ") + "."
        guard supported else {
            return CapabilityCheck(
                name: "madv_hwpoison", status: .missing,
                detail: "The kernel has no memory-failure handling (CONFIG_MEMORY_FAILURE): MADV_HWPOISON is refused and real poison is not recoverable; only synthetic fault injection works." + checkedText,
                remedy: "Use a kernel built with CONFIG_MEMORY_FAILURE=y; until then use inject mechanism \"synthetic\".",
                checked: checked)
        }
        if recovery == 0 {
            return CapabilityCheck(
                name: "madv_hwpoison", status: .limited,
                detail: "vm.memory_failure_recovery is 0: the kernel panics on every memory failure, so kernel poison injection would crash the host." + checkedText,
                remedy: "sysctl -w vm.memory_failure_recovery=1 (and persist it in /etc/sysctl.d) before any kernel injection.",
                checked: checked)
        }
        guard probe.capSysAdmin else {
            return CapabilityCheck(
                name: "madv_hwpoison", status: .limited,
                detail: "The kernel supports MADV_HWPOISON, but it needs CAP_SYS_ADMIN, which this process lacks." + checkedText,
                remedy: "Run as root or grant CAP_SYS_ADMIN, and start serve with --control.enable-kernel-poison (it retires real pages until reboot).",
                checked: checked)
        }
        return CapabilityCheck(
            name: "madv_hwpoison", status: .ok,
            detail: "MADV_HWPOISON is available (enable it with --control.enable-kernel-poison; each injection retires a real page until reboot)." + checkedText,
            checked: checked)
    }
}
