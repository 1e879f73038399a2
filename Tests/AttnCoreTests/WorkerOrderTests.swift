#if canImport(Glibc)
    import Glibc
#endif
import Testing
import AttnCore

/// Workers.Counter's error rule: the error reported is the lowest failing item's, whatever the scheduling,
/// and every item below it has been run.
@Suite("Workers: the lowest failing item's error")
struct WorkerOrderTests {
    struct ItemFailed: Error, Equatable { let item: Int }

    @Test("items 37, 90 and 150 fail: 37 is reported on every run with 1 to 5 workers; items 0..<37 all ran")
    func lowestFailure() throws {
        for workers in 1...5 {
            for _ in 0..<10 {
                let counter = Workers.Counter(200, workers: workers)
                // Each worker notes the items it ran in its own slot (no lock to hide a race from TSan).
                var ran = [[Int]](repeating: [], count: workers)
                ran.withUnsafeMutableBufferPointer { slots in
                    let slots = UncheckedSendable(slots)
                    Workers.run(workers) { worker, _ in
                        counter.forEach(worker: worker) { item in
                            // Items 20 and 37 are slow, so that with several workers 90 fails first in time
                            // and items below 37 are still running when it does.
                            if item == 20 || item == 37 { usleep(2000) }
                            if [37, 90, 150].contains(item) { throw ItemFailed(item: item) }
                            slots.value[worker].append(item)
                        }
                    }
                }
                #expect(throws: ItemFailed(item: 37)) { try counter.check() }
                #expect(Set(0..<37).isSubset(of: Set(ran.joined())), "\(workers) workers")
            }
        }
        let clean = Workers.Counter(10, workers: 3)
        Workers.run(3) { worker, _ in clean.forEach(worker: worker) { _ in } }
        try clean.check()
    }
}
