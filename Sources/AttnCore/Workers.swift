#if canImport(Glibc)
    import Glibc
#endif
import Dispatch
import Synchronization

/// A block of consecutive query rows of one head, as handed to an analysis by
/// `AttentionSource.visitBlocks`.
public struct RowBlock: Sendable {
    /// The worker running this call, `0..<workers`: per-worker accumulators are indexed with it.
    public let worker: Int
    public let head: Int
    /// The query rows held; the values are `rows.count × keys`, row-major.
    public let rows: Range<Int>
    /// The statistics of each row (`statistics[r]` for row `rows.lowerBound + r`; the array may hold more), when
    /// the source computed them while making the rows (recomputed attention's softmax; stored float16 rows when
    /// asked for, `visitBlocks(rowStatistics:)`), or nil.
    public let statistics: [RowStatistics]?

    public init(worker: Int, head: Int, rows: Range<Int>, statistics: [RowStatistics]? = nil) {
        self.worker = worker
        self.head = head
        self.rows = rows
        self.statistics = statistics
    }
}

/// Called once per block, possibly from several threads at once (never twice at once with the same
/// `worker`). The values `[row, key]` are valid only during the call.
public typealias RowBlockVisitor = (RowBlock, UnsafeBufferPointer<Float>) throws -> Void

/// Threads for the parallel work: `ATTNINSPECT_THREADS` if set, else the processors available.
public enum Workers {
    public static let count: Int = {
        if let text = getenv("ATTNINSPECT_THREADS").map({ String(cString: $0) }), let n = Int(text), n >= 1 {
            return Swift.min(n, 256)
        }
        return Swift.max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }()

    /// Starts the worker threads ahead of the first parallel run (the program's start-up is a good time).
    public static func prepare() {
        if count > 1 { WorkerPool.shared.start() }
    }

    /// Runs `body(worker)` for every worker in `0..<workers`, concurrently; rethrows the first error (a body that
    /// cannot throw makes a run that cannot either). After an error the others see `stopped` and should return
    /// early. The jobs given to `alongside` on this thread are run first, each by one of the workers.
    public static func run<E: Error>(_ workers: Int, _ body: (_ worker: Int, _ stopped: () -> Bool) throws(E) -> Void)
        throws(E)
    {
        let sides = SideJob.take()
        if workers <= 1 {
            for side in sides { side.runIfUnclaimed() }
            try body(0) { false }
            return
        }
        let failure = FirstError<E>()
        // The body runs on several threads; callers give each worker its own state (by index).
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            let jobs = UncheckedSendable(sides)  // each job is run once (claimed atomically)
            let each: @Sendable (Int) -> Void = { worker in
                for side in jobs.value { side.runIfUnclaimed() }
                do throws(E) {
                    try shared.value(worker) { failure.happened }
                } catch {
                    failure.record(error)
                }
            }
            // The pool's threads start at once; while it is busy (a run inside a run, or from another
            // thread), libdispatch's.
            if !WorkerPool.shared.run(workers, each) {
                DispatchQueue.concurrentPerform(iterations: workers, execute: each)
            }
        }
        if let error = failure.error { throw error }
    }

    /// Runs `body` on this thread and `job` once, both done when this returns: `job` on whichever worker of
    /// the first parallel run `body` makes on this thread is free first, while the others start on that
    /// run's work (it then joins them); or here, after `body`, if `body` makes no such run.
    ///
    /// This is attninspect's one way to overlap reading with computing. Rollout finishes layer l (arithmetic)
    /// alongside reading layer l + 1 (memory): the two take about as long on a small dump, and each alone uses
    /// the cores badly. The Q/K recompute reads the next layer's Q and K alongside the current layer's heads.
    /// Calls may nest (rollout reading a recomputed layer): the next run takes every job offered.
    public static func alongside(_ job: (() -> Void)?, _ body: () throws -> Void) rethrows {
        guard let job else { return try body() }
        try withoutActuallyEscaping(job) { job in
            let side = SideJob(job)
            SideJob.offer(side)
            defer {
                SideJob.withdraw(side)
                side.runIfUnclaimed()
            }
            try body()
        }
    }

    /// The first error thrown by any worker.
    private final class FirstError<E: Error>: Sendable {
        private let first = Mutex<E?>(nil)
        private let flag = Atomic<Bool>(false)
        var happened: Bool { flag.load(ordering: .relaxed) }
        var error: E? { first.withLock { $0 } }
        func record(_ error: E) {
            flag.store(true, ordering: .relaxed)
            first.withLock { if $0 == nil { $0 = error } }
        }
    }

    /// Hands out `0..<count` one index at a time, in increasing order, to whichever worker asks next.
    ///
    /// With `forEach` and `check`, an error is the same whatever the scheduling: when items fail, the one
    /// reported is the lowest failing item's, because the items below it are still finished (one of them
    /// may fail first in the order) and those above it are no longer handed out. A file with several
    /// corrupt chunks then names the same chunk on every run and with any number of threads.
    public final class Counter: @unchecked Sendable {
        private let next = Atomic<Int>(0)
        private let count: Int
        private let lowestFailure = Atomic<Int>(Int.max)
        /// Each worker's failure, written only by that worker and read by `check` after the workers have
        /// joined: no lock (a Synchronization.Mutex is invisible to ThreadSanitizer, which then reports
        /// the data it guards).
        private let failures: UnsafeMutableBufferPointer<(item: Int, error: any Error)?>

        /// `workers`: how many workers will call `forEach` (their indices are `0..<workers`).
        public init(_ count: Int, workers: Int = 0) {
            self.count = count
            failures = .allocate(capacity: workers)
            failures.initialize(repeating: nil)
        }

        deinit {
            failures.deinitialize()
            failures.deallocate()
        }

        /// The next index, or nil when all have been handed out (or a lower item has failed).
        public func take() -> Int? {
            let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
            return i < count && i < lowestFailure.load(ordering: .relaxed) ? i : nil
        }

        /// `body(item)` for each item worker `worker` takes; an error is recorded against its item and ends
        /// this worker's loop (every item it could still take is above the failed one).
        public func forEach(worker: Int, _ body: (Int) throws -> Void) {
            precondition(worker < failures.count, "Counter made for \(failures.count) workers")
            while let i = take() {
                do {
                    try body(i)
                } catch {
                    failures[worker] = (i, error)
                    lowestFailure.min(i, ordering: .relaxed)
                    return
                }
            }
        }

        /// Throws the lowest failing item's error, if any. Call after the workers have finished.
        public func check() throws {
            if let first = failures.compactMap({ $0 }).min(by: { $0.item < $1.item }) { throw first.error }
        }
    }
}

/// A value handed to worker threads whose thread safety the caller guarantees.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

extension AttentionSource {
    /// The default `visitBlocks`: reads the whole layer, then hands each head to the workers as one block.
    public func visitLayerBlocks(layer index: Int, heads: Range<Int>, workers: Int, _ body: RowBlockVisitor) throws {
        let layer = try self.layer(index)
        let size = layer.queries * layer.keys
        try layer.values.withUnsafeBufferPointer { all in
            let n = Swift.min(workers, heads.count)
            let counter = Workers.Counter(heads.count, workers: n)
            Workers.run(n) { worker, _ in
                counter.forEach(worker: worker) { i in
                    let h = heads.lowerBound + i
                    try body(
                        RowBlock(worker: worker, head: h, rows: 0..<layer.queries),
                        UnsafeBufferPointer(rebasing: all[(h * size)..<((h + 1) * size)]))
                }
            }
            try counter.check()
        }
    }
}

extension AttentionSource {
    /// Sources without faster access hand out whole heads of a layer read at once, without statistics.
    public func visitBlocks(
        layer index: Int, heads: Range<Int>, workers: Int, rowStatistics: Bool, _ body: RowBlockVisitor
    ) throws {
        try visitLayerBlocks(layer: index, heads: heads, workers: workers, body)
    }
}

/// A job offered by `Workers.alongside` to the next `Workers.run` on the same thread (a pthread key holds
/// each thread's offers); whoever claims it first runs it.
private final class SideJob: @unchecked Sendable {
    private let job: () -> Void
    private let claimed = Atomic<Bool>(false)

    init(_ job: @escaping () -> Void) { self.job = job }

    /// Runs the job unless it has been claimed already.
    func runIfUnclaimed() {
        if !claimed.exchange(true, ordering: .acquiringAndReleasing) { job() }
    }

    /// One thread's offers, in the order made; touched only by that thread.
    private final class Offers {
        var jobs: [SideJob] = []
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<Offers>.fromOpaque(pointer).release() }
        }
        return key
    }()

    private static var offers: Offers {
        if let pointer = pthread_getspecific(key) { return Unmanaged<Offers>.fromOpaque(pointer).takeUnretainedValue() }
        let offers = Offers()
        pthread_setspecific(key, Unmanaged.passRetained(offers).toOpaque())
        return offers
    }

    static func offer(_ side: SideJob) { offers.jobs.append(side) }

    /// Removes `side` from this thread's offers if it is still there.
    static func withdraw(_ side: SideJob) { offers.jobs.removeAll { $0 === side } }

    /// This thread's offers, taken away.
    static func take() -> [SideJob] {
        guard pthread_getspecific(key) != nil else { return [] }
        let offers = offers
        defer { offers.jobs = [] }
        return offers.jobs
    }
}
