import CNUMA
import HostFS

#if canImport(Glibc)
import Glibc
#endif

/// Why a topology could not be built or a node list could not be parsed.
public typealias TopologyError = CodedError<TopologyFailure>

/// The kinds of `TopologyError`.
public enum TopologyFailure: String, Sendable {
    /// A sysfs file the topology needs is missing or malformed.
    case unreadable
    /// A node that was asked for does not exist or has no memory.
    case unknownNode
    /// No node is left to scan.
    case noNodes
}

/// One NUMA node as the scanner sees it.
public struct NUMANode: Sendable, Equatable {
    /// Node id (the N of `nodeN`).
    public var id: Int
    /// CPUs that belong to the node (empty for a memory-only node such as CXL memory).
    public var cpus: [Int]
    /// `MemTotal` of the node in bytes (0: no memory).
    public var memoryBytes: UInt64
    /// SLIT distances to every node, indexed by position in `Topology.nodes` order of ids
    /// (`distances[k]` is the distance to `Topology.nodes[k]`); empty when unknown.
    public var distances: [Int]

    public init(id: Int, cpus: [Int], memoryBytes: UInt64, distances: [Int]) {
        self.id = id
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.distances = distances
    }
}

/// The NUMA layout of the host: nodes, their CPUs, memory and distances.
///
/// Built from sysfs (`devices/system/node/` under `--path.sysfs`) so tests can present any layout,
/// or from libnuma for the live host. Node sizes in a VM change (balloon, hotplug): `memoryBytes`
/// is the size at build time; readers that need the current value re-read `nodeN/meminfo`.
public struct Topology: Sendable, Equatable {
    /// Nodes in ascending id order.
    public var nodes: [NUMANode]

    public init(nodes: [NUMANode]) {
        self.nodes = nodes.sorted { $0.id < $1.id }
    }

    /// The node with this id.
    public func node(_ id: Int) -> NUMANode? { nodes.first { $0.id == id } }

    /// The CPUs a worker for `nodeID` runs on: the node's own CPUs, or for a CPU-less memory node
    /// the CPUs of the nearest node (by SLIT distance; ties go to the lower id) that has CPUs.
    /// Empty only when no node has CPUs.
    public func workerCPUs(for nodeID: Int) -> [Int] {
        guard let index = nodes.firstIndex(where: { $0.id == nodeID }) else { return [] }
        let node = nodes[index]
        if !node.cpus.isEmpty { return node.cpus }
        var best: (distance: Int, id: Int, cpus: [Int])?
        for (k, other) in nodes.enumerated() where other.id != nodeID && !other.cpus.isEmpty {
            let distance = k < node.distances.count ? node.distances[k] : Int.max
            if best == nil || distance < best!.distance || (distance == best!.distance && other.id < best!.id) {
                best = (distance, other.id, other.cpus)
            }
        }
        return best?.cpus ?? []
    }

    /// The nodes to scan: `requested` (from `--scan.nodes`), or all nodes with memory when nil.
    /// Throws when a requested node does not exist or has no memory, naming it.
    public func scanNodes(_ requested: [Int]?) throws(TopologyError) -> [NUMANode] {
        guard let requested else {
            let all = nodes.filter { $0.memoryBytes > 0 }
            if all.isEmpty { throw TopologyError(.noNodes, "no online node has memory") }
            return all
        }
        var result: [NUMANode] = []
        for id in requested {
            guard let node = node(id) else {
                let known = nodes.map { String($0.id) }.joined(separator: ",")
                throw TopologyError(.unknownNode, "node \(id) does not exist (online nodes: \(known))")
            }
            guard node.memoryBytes > 0 else {
                throw TopologyError(.unknownNode, "node \(id) has no memory")
            }
            result.append(node)
        }
        if result.isEmpty { throw TopologyError(.noNodes, "no node selected") }
        return result
    }

    // MARK: sysfs

    /// Reads the topology from `devices/system/node/` under `sysfs`: `online`, and per node
    /// `cpulist`, `meminfo` (MemTotal) and `distance`.
    public static func read(sysfs: SysFS) throws(TopologyError) -> Topology {
        let online: [Int]
        do {
            online = try parseList(sysfs.readString("devices/system/node/online"))
        } catch let e as ValueFormatError {
            throw TopologyError(.unreadable, "devices/system/node/online: \(e.message)")
        } catch {
            throw TopologyError(.unreadable, "\(error)")
        }
        var nodes: [NUMANode] = []
        for id in online {
            let dir = "devices/system/node/node\(id)"
            do {
                let cpus = try parseList(sysfs.readString(dir + "/cpulist"))
                let meminfo = try parseNodeMeminfo(sysfs.readString(dir + "/meminfo"))
                guard let total = meminfo["MemTotal"] else {
                    throw TopologyError(.unreadable, "\(dir)/meminfo: no MemTotal line")
                }
                let distances = (try? parseDistances(sysfs.readString(dir + "/distance"))) ?? []
                nodes.append(NUMANode(id: id, cpus: cpus, memoryBytes: total, distances: distances))
            } catch let e as ValueFormatError {
                throw TopologyError(.unreadable, "\(dir)/cpulist: \(e.message)")
            } catch let e as TopologyError {
                throw e
            } catch {
                throw TopologyError(.unreadable, "\(error)")
            }
        }
        if nodes.isEmpty { throw TopologyError(.noNodes, "devices/system/node/online lists no node") }
        return Topology(nodes: nodes)
    }

    /// The live host through libnuma (`numa_available`, `numa_max_node`, `numa_node_size64`,
    /// `numa_node_to_cpus`, `numa_distance`, `numa_get_mems_allowed`). Falls back to nil when libnuma reports no NUMA
    /// support; callers then use `read(sysfs:)`.
    public static func fromLibnuma() -> Topology? {
        guard numa_available() >= 0 else { return nil }
        let maxNode = Int(numa_max_node())
        // The nodes this process may allocate on (its cpuset), which for the daemon are the nodes.
        guard let allowed = numa_get_mems_allowed() else { return nil }
        defer { numa_bitmask_free(allowed) }
        var ids: [Int] = []
        for id in 0...maxNode where numa_bitmask_isbitset(allowed, UInt32(id)) != 0 {
            ids.append(id)
        }
        let cpuCount = Int(numa_num_possible_cpus())
        var nodes: [NUMANode] = []
        for id in ids {
            var free: Int64 = 0
            let size = numa_node_size64(Int32(id), &free)
            var cpus: [Int] = []
            if let mask = numa_allocate_cpumask() {
                if numa_node_to_cpus(Int32(id), mask) == 0 {
                    for cpu in 0..<cpuCount where numa_bitmask_isbitset(mask, UInt32(cpu)) != 0 { cpus.append(cpu) }
                }
                numa_free_cpumask(mask)
            }
            let distances = ids.map { Int(numa_distance(Int32(id), Int32($0))) }
            nodes.append(NUMANode(id: id, cpus: cpus, memoryBytes: size > 0 ? UInt64(size) : 0, distances: distances))
        }
        return nodes.isEmpty ? nil : Topology(nodes: nodes)
    }
}
