import HostFS
import Testing
@testable import ScanWorkers

@Suite struct TopologyTests {
    @Test func readsThreeNodeFixtureWithACPULessNode() throws {
        let topology = try Topology.read(sysfs: fixture("three-node").sysfs)
        #expect(topology.nodes.map(\.id) == [0, 1, 2])
        #expect(topology.nodes.map(\.cpus) == [[0, 1], [], [2, 3]])
        #expect(topology.nodes.map(\.memoryBytes) == [8 << 30, 4 << 30, 8 << 30])
        #expect(topology.node(1)?.distances == [21, 10, 17])
        // Node 1 has no CPUs: its worker runs on the nearest node's (node 2 at 17, not node 0 at 21).
        #expect(topology.workerCPUs(for: 0) == [0, 1])
        #expect(topology.workerCPUs(for: 1) == [2, 3])
        #expect(topology.workerCPUs(for: 2) == [2, 3])
        #expect(topology.workerCPUs(for: 7) == [])
    }

    @Test func selectsNodesToScan() throws {
        let topology = try Topology.read(sysfs: fixture("three-node").sysfs)
        #expect(try topology.scanNodes(nil).map(\.id) == [0, 1, 2])
        #expect(try topology.scanNodes([2, 0]).map(\.id) == [2, 0])
        #expect {
            try topology.scanNodes([0, 5])
        } throws: { error in
            (error as? TopologyError)?.code == .unknownNode && "\(error)".contains("node 5 does not exist")
        }
    }

    @Test func missingSysfsIsAClearError() {
        #expect {
            try Topology.read(sysfs: SysFS(root: "/nonexistent-mcescan"))
        } throws: { error in
            (error as? TopologyError)?.code == .unreadable && "\(error)".contains("online")
        }
    }

    /// On the live host, libnuma and sysfs must describe the same nodes and CPUs.
    @Test func libnumaAgreesWithSysfsOnThisHost() throws {
        let sysfs = try Topology.read(sysfs: SysFS(root: "/sys"))
        guard let numa = Topology.fromLibnuma() else {
            Issue.record("libnuma reports no NUMA support on this host")
            return
        }
        #expect(numa.nodes.map(\.id) == sysfs.nodes.map(\.id))
        #expect(numa.nodes.map(\.cpus) == sysfs.nodes.map(\.cpus))
        #expect(numa.nodes.allSatisfy { $0.memoryBytes > 0 })
    }

    @Test func libnumaBinderValidatesNodeIds() throws {
        let topology = try Topology.read(sysfs: SysFS(root: "/sys"))
        let binder = LibNUMABinder(topology: topology)
        let page = 4096
        let p = UnsafeMutableRawPointer.allocate(byteCount: page * 2, alignment: page)
        defer { p.deallocate() }
        let bad = (topology.nodes.map(\.id).max() ?? 0) + 1
        #expect(throws: BindError.self) { try binder.bindMemory(p, bytes: page, toNode: bad) }
        #expect(throws: BindError.self) { try binder.bindCurrentThread(node: bad, cpus: [4096]) }
    }
}
