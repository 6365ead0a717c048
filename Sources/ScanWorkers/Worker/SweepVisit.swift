import CScanKernel

#if canImport(Glibc)
import Glibc
#endif

/// A visit of the free or hugetlb sweep: verify and release the chunk taken at the previous
/// visit, then take the next one within the budget unless the memory guard backs off.
extension ScanWorker {
    enum SweepVisit { case took(pages: Int), backoff, nothing }

    func visitSweep(_ sweep: FreeSweep, budgetPages: Int) -> SweepVisit {
        let type = sweep.type
        var verifiedPages = 0
        if let (tally, chunk) = sweep.verifyAndRelease() {
            let held = sweepFrames.removeValue(forKey: type.bit)
            let frames = held?.base == chunk.base ? held?.frames : nil
            account(type, tally, base: UInt(bitPattern: chunk.base), replaced: false) { fault in
                self.physicalAddress(frames: frames, page: fault.pageIndex, pageSize: chunk.pageSize, address: fault.address)
            }
            verifiedPages = tally.pages * chunk.pageSize / basePageSize
            if var frames {
                for f in tally.faults where f.pageIndex < frames.count { frames[f.pageIndex] = 0 }   // not verified
                coverage.mark(frames, framesPerPage: UInt64(chunk.pageSize / basePageSize))
            }
        }
        let plan = sweep.plan(budgetBytes: budgetPages * basePageSize)
        if type == .hugetlb {
            counters.type(.hugetlb).available.store(plan.backoff == .unavailable ? 0 : 1, ordering: .relaxed)
        }
        if let reason = plan.backoff {
            counters.countBackoff(reason)
            setRegion(type, bytes: 0, locked: 0)
            return .backoff
        }
        guard plan.bytes > 0 else {
            setRegion(type, bytes: 0, locked: 0)
            return verifiedPages > 0 ? .took(pages: verifiedPages) : .nothing
        }
        sweepSerial &+= 1
        let s = seed(pass: sweepSerial &* 0x1_0000_0001 &+ UInt64(type.bit))
        do {
            let chunk = try sweep.take(bytes: plan.bytes, seed: s.seed, invert: s.invert)
            if let pagemap, pagemap.isUsable {
                sweepFrames[type.bit] = (chunk.base, pagemap.frames(chunk.base, count: chunk.pageCount, stride: chunk.pageSize))
            }
            setRegion(type, bytes: UInt64(chunk.bytes), locked: 0)
            checkPlacement(type, base: chunk.base, pages: chunk.pageCount, pageSize: chunk.pageSize)
            return .took(pages: max(verifiedPages, chunk.bytes / basePageSize))
        } catch {
            counters.countBackoff(error.reason)
            if type == .hugetlb && error.reason == .unavailable {
                counters.type(.hugetlb).available.store(0, ordering: .relaxed)
            }
            log(.debug, "sweep backed off", ["node": "\(node.id)", "memory_type": type.name, "err": error.message])
            setRegion(type, bytes: 0, locked: 0)
            return .backoff
        }
    }
}
