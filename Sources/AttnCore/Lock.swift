#if canImport(Glibc)
    import Glibc
#endif

/// A pthread mutex at a fixed address (allocated once, never moved: a `pthread_mutex_t` stored in a Swift property
/// and passed with `&` may be copied). pthread's, rather than Synchronization's `Mutex`, because ThreadSanitizer
/// understands it (the CI's TSan run would otherwise report the data it guards).
public final class Lock: @unchecked Sendable {
    /// The mutex, for `pthread_cond_wait` (the corresponding C calls are `pthread_mutex_lock`/`unlock`).
    public let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// `body`, with the lock held.
    public func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A pthread condition variable at a fixed address, used with a `Lock`.
public final class Condition: @unchecked Sendable {
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Waits (the caller holds `lock`) until signalled; `lock` is held again on return.
    public func wait(_ lock: Lock) { pthread_cond_wait(condition, lock.mutex) }
    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }
}
