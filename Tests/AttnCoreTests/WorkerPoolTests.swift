#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Synchronization
import Testing
import AttnCore
import CAttnThreads

/// Workers.run on the worker pool (and libdispatch when the pool is busy), and Workers.alongside.
@Suite("Workers: the pool and side jobs")
struct WorkerPoolTests {
    struct Failed: Error, Equatable { let worker: Int }

    /// Runs `workers` workers, each noting its index in its own slot; returns how often each index ran.
    private func indicesRun(_ workers: Int) throws -> [Int] {
        var runs = [Int](repeating: 0, count: workers)
        runs.withUnsafeMutableBufferPointer { slots in
            let slots = UncheckedSendable(slots)
            Workers.run(workers) { worker, _ in slots.value[worker] += 1 }
        }
        return runs
    }

    @Test("every worker index runs exactly once, 2000 runs in a row, with 1 to Workers.count + 2 workers")
    func eachIndexOnce() throws {
        for round in 0..<2000 {
            let workers = 1 + round % (Workers.count + 2)
            #expect(try indicesRun(workers) == [Int](repeating: 1, count: workers))
        }
    }

    @Test("a run inside a worker's run and runs from two threads at once all finish, each index once")
    func nestedAndConcurrent() throws {
        var inner = [[Int]](repeating: [], count: 2)
        try inner.withUnsafeMutableBufferPointer { slots in
            let slots = UncheckedSendable(slots)
            try Workers.run(2) { worker, _ in slots.value[worker] = try indicesRun(3) }
        }
        #expect(inner == [[1, 1, 1], [1, 1, 1]])

        let results = UnsafeMutableBufferPointer<[Int]>.allocate(capacity: 2)
        results.initialize(repeating: [])
        defer { results.deinitialize(); results.deallocate() }
        let shared = UncheckedSendable(results)
        let group = DispatchGroup()
        for t in 0..<2 {
            DispatchQueue.global().async(group: group) {
                var total = [Int](repeating: 0, count: 2)
                for _ in 0..<500 {
                    let once = (try? indicesRun(2)) ?? []
                    for (i, n) in once.enumerated() { total[i] += n }
                }
                shared.value[t] = total
            }
        }
        group.wait()
        #expect(Array(results) == [[500, 500], [500, 500]])
    }

    @Test("the first error is rethrown, the others see `stopped`")
    func errors() {
        #expect(throws: Failed(worker: 1)) {
            try Workers.run(2) { worker, stopped in
                if worker == 1 { throw Failed(worker: 1) }
                // Worker 0 waits (at most 2 s) until it sees the failure.
                for _ in 0..<2000 where !stopped() { usleep(1000) }
                #expect(stopped())
            }
        }
    }

    @Test("alongside: the job runs once, during the body's parallel run, and is done when alongside returns")
    func sideJob() throws {
        for _ in 0..<3000 {
            var jobRuns = 0
            var blocksSeen = 0
            var bodyDone = false
            let counter = Workers.Counter(8, workers: 2)
            var perWorker = [0, 0]
            Workers.alongside({ jobRuns += 1 }) {
                perWorker.withUnsafeMutableBufferPointer { slots in
                    let slots = UncheckedSendable(slots)
                    Workers.run(2) { worker, _ in
                        counter.forEach(worker: worker) { _ in slots.value[worker] += 1 }
                    }
                }
                blocksSeen = perWorker.reduce(0, +)
                bodyDone = true
            }
            #expect(jobRuns == 1 && blocksSeen == 8 && bodyDone)
        }
    }

    @Test(
        """
        alongside nested (rollout finishing a layer while a recomputed layer reads ahead): the first parallel run \
        takes both jobs, each runs once, before that run returns
        """
    )
    func nestedSideJobs() throws {
        for _ in 0..<1000 {
            let outer = Atomic<Int>(0), inner = Atomic<Int>(0)
            let counter = Workers.Counter(8, workers: 2)
            Workers.alongside({
                outer.add(1, ordering: .relaxed)
            }) {
                Workers.alongside({
                    inner.add(1, ordering: .relaxed)
                }) {
                    Workers.run(2) { worker, _ in counter.forEach(worker: worker) { _ in } }
                }
                // Both jobs were taken by that run: they are done by now.
                #expect(outer.load(ordering: .relaxed) == 1 && inner.load(ordering: .relaxed) == 1)
            }
            #expect(outer.load(ordering: .relaxed) == 1 && inner.load(ordering: .relaxed) == 1)
        }
        // Nothing is left offered: a later run runs neither job again.
        let outer = Atomic<Int>(0)
        Workers.alongside({ outer.add(1, ordering: .relaxed) }) {}
        _ = try indicesRun(2)
        #expect(outer.load(ordering: .relaxed) == 1)
    }

    @Test(
        """
        alongside: with no parallel run in the body the job runs after it; with an error it still runs, and the \
        error is rethrown
        """
    )
    func sideJobWithoutRun() {
        var order: [String] = []
        Workers.alongside({ order.append("job") }) { order.append("body") }
        #expect(order == ["body", "job"])
        var ran = false
        #expect(throws: Failed(worker: 0)) {
            try Workers.alongside({ ran = true }) { throw Failed(worker: 0) }
        }
        #expect(ran)
        // A run after alongside returned does not see the job again.
        var again = 0
        Workers.alongside({ again += 1 }) {}
        _ = try? indicesRun(2)
        #expect(again == 1)
    }

    @Test("a thread moved off its CPU runs on another and may again run on every CPU it could before")
    func moveOffCPU() throws {
        func allowed() throws -> String {
            let status = try String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)
            return try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }).description
        }
        let before = try allowed()
        let cpu = cattn_current_cpu()
        try #require(cpu >= 0)
        // Where the thread runs once its affinity is restored is the scheduler's choice (it may go back):
        // what is checked is the CPU it was moved to.
        let moved = cattn_move_off_cpu(cpu)
        #expect(try allowed() == before)
        if moved >= 0 {
            #expect(moved != cpu)
        } else {
            // Only when this thread may run on one CPU alone.
            #expect(before.hasSuffix(":\t\(cpu)"), "\(before)")
        }
        #expect(cattn_move_off_cpu(-1) == -1 && cattn_move_off_cpu(1 << 20) == -1)
    }
}
