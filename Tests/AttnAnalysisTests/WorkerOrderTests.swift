#if canImport(Glibc)
import Glibc
#endif
import Synchronization
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
                let counter = Workers.Counter(200)
                let ran = Mutex<Set<Int>>([])
                try Workers.run(workers) { _, _ in
                    counter.forEach { item in
                        // Items 20 and 37 are slow, so that with several workers 90 fails first in time
                        // and items below 37 are still running when it does.
                        if item == 20 || item == 37 { usleep(2000) }
                        if [37, 90, 150].contains(item) { throw ItemFailed(item: item) }
                        ran.withLock { _ = $0.insert(item) }
                    }
                }
                #expect(throws: ItemFailed(item: 37)) { try counter.check() }
                let done = ran.withLock { $0 }
                #expect(Set(0..<37).isSubset(of: done), "\(workers) workers")
            }
        }
        let clean = Workers.Counter(10)
        try Workers.run(3) { _, _ in clean.forEach { _ in } }
        try clean.check()
    }
}
