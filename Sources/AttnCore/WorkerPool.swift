#if canImport(Glibc)
    import Glibc
#endif
import Synchronization
internal import CAttnThreads

/// Threads that wait for `Workers.run`'s jobs.
///
/// `DispatchQueue.concurrentPerform` hands the other iterations to libdispatch's thread pool, which on
/// Linux often starts them late or not at all when the work is short: on a 2-core machine the second
/// worker of a 1 ms layer began, in about a third of the layers, only after the first had done all the
/// work. The threads here are made once, at the first parallel run.
///
/// A woken thread is often put on its waker's core; if the caller and a pool thread then share one, they
/// take turns for milliseconds (a small stats run's layers took 1.55 ms instead of 0.34, for several layers
/// in a row, in about half the runs), so a pool thread that finds itself on the caller's core moves off it
/// (`cattn_move_off_cpu`). Measured on 2026-12-05 (each trick removed alone, paired runs): without the move
/// the small benchmark dump's stats took 18% longer, its rollout 14%, its Q/K recompute 8%. Pool threads used
/// to spin for 1 ms before sleeping, and the caller to yield after posting a job: neither changed any row of
/// the README's Performance table by more than 2.6% (within the noise), so both went.
///
/// One run at a time: a run asked for while another is going on (from a worker, or from another
/// thread) gets `false` and the caller runs it another way. The lock and condition variables are
/// pthread's, which ThreadSanitizer understands.
final class WorkerPool: @unchecked Sendable {
    /// Pool threads for `Workers.count` workers: the caller is worker 0.
    static let shared = WorkerPool(threads: Workers.count - 1)

    private let threadCount: Int
    private let mutex = Lock()
    /// Signalled when a job is posted.
    private let posted = Condition()
    /// Signalled when the last active pool thread of a job is done.
    private let finished = Condition()
    // Guarded by `mutex`:
    private var started = false
    /// Pool threads made (fewer than `threadCount` only if the system refused one).
    private var available = 0
    private var busy = false
    private var generation = 0
    private var job: ((Int) -> Void)?
    /// Workers of the current job, the caller included.
    private var participants = 0
    /// The next worker index of the current job to hand out: whoever is free takes it, the caller included,
    /// so a pool thread the system does not run soon (a busy machine) does not hold the job up.
    private let nextIndex = Atomic<Int>(0)
    /// Pool threads that have joined the current job and are not done (joined under `mutex`).
    private let activeWorkers = Atomic<Int>(0)
    /// The CPU the caller of the current job was on when it posted it.
    private let callerCPU = Atomic<Int>(-1)

    private init(threads: Int) {
        threadCount = max(0, threads)
    }

    /// Starts the pool threads now, so that they have settled on their cores before the first run.
    func start() {
        mutex.lock()
        if !started { startThreads() }
        mutex.unlock()
    }

    /// Runs `body(worker)` for `worker` in `0..<workers`, each index on whichever thread takes it first (the
    /// caller or a pool thread; the caller may run several), and returns when all are done. false, without running
    /// anything, when `workers` is
    /// more than the pool holds or another run is going on.
    func run(_ workers: Int, _ body: (Int) -> Void) -> Bool {
        guard workers >= 2, workers - 1 <= threadCount else { return false }
        return withoutActuallyEscaping(body) { body in
            mutex.lock()
            if busy {
                mutex.unlock()
                return false
            }
            if !started { startThreads() }
            guard workers - 1 <= available else {
                mutex.unlock()
                return false
            }
            busy = true
            job = body
            participants = workers
            nextIndex.store(0, ordering: .sequentiallyConsistent)
            callerCPU.store(Int(cattn_current_cpu()), ordering: .relaxed)
            generation &+= 1
            posted.broadcast()
            mutex.unlock()

            while true {
                let index = nextIndex.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue
                guard index < workers else { break }
                body(index)
            }

            // Every index is taken: wait for the pool threads still running theirs. A pool thread joins under
            // the lock, so once the lock is held with none active, none can still take the job.
            mutex.lock()
            while activeWorkers.load(ordering: .sequentiallyConsistent) > 0 { finished.wait(mutex) }
            job = nil
            busy = false
            mutex.unlock()
            return true
        }
    }

    /// Starts the pool threads, once (called with `mutex` held); stops at the first the system refuses.
    private func startThreads() {
        started = true
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        for index in stride(from: 1, through: threadCount, by: 1) {
            let context = Unmanaged.passRetained(Start(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            guard
                pthread_create(
                    &thread, &attributes,
                    { context in
                        let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
                        start.pool.serve(as: start.index)
                    }, context) == 0
            else {
                Unmanaged<Start>.fromOpaque(context).release()
                return
            }
            available = index
        }
    }

    private final class Start {
        let pool: WorkerPool
        let index: Int
        init(pool: WorkerPool, index: Int) {
            self.pool = pool
            self.index = index
        }
    }

    /// Pool thread `index` (1...threadCount): waits for each job and takes worker indices of it while any are left.
    private func serve(as index: Int) -> Never {
        var seen = 0
        while true {
            mutex.lock()
            while generation == seen { posted.wait(mutex) }
            seen = generation
            guard var body = job else {
                mutex.unlock()
                continue
            }
            let workers = participants
            activeWorkers.add(1, ordering: .sequentiallyConsistent)
            mutex.unlock()
            // Woken by the caller, the kernel often puts this thread on the caller's core, where the two then
            // take turns for milliseconds while another core idles: move off it.
            let cpu = Int(cattn_current_cpu())
            if cpu >= 0 && cpu == callerCPU.load(ordering: .relaxed) { _ = cattn_move_off_cpu(Int32(cpu)) }
            while true {
                let index = nextIndex.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue
                guard index < workers else { break }
                body(index)
            }
            // The job's closure must not outlive the run: the caller's `withoutActuallyEscaping` checks
            // that no reference to it is left once the last pool thread is counted out.
            body = { _ in }
            mutex.lock()
            if activeWorkers.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 { finished.signal() }
            mutex.unlock()
        }
    }
}
