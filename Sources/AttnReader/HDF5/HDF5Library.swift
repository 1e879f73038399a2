internal import CAttnHDF5
#if canImport(Glibc)
    import Glibc
#endif
import AttnCore

/// Every libhdf5 call goes through `HDF5Library.call`: one process-wide recursive lock (libhdf5
/// serialises its calls anyway, and a handle closed inside a call must not deadlock), the automatic
/// error print silenced on the calling thread, and the error stack read on that same thread.
enum HDF5Library {
    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(m, &attributes)
        pthread_mutexattr_destroy(&attributes)
        return m
    }()

    static func call<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        cattn_silence_errors()
        _ = pluginsDisabled
        return try body()
    }

    /// Filter plugins off, before any file is opened: a dataset with a filter libhdf5 was not built with would
    /// otherwise make it `dlopen` every library in `HDF5_PLUGIN_PATH` (or its default folder) and run their
    /// constructors. Such a dataset is refused by name instead (`HDF5Tensor`). This is the reader's own safety
    /// property, so it is set here rather than by the executable: every program that reads a dump gets it.
    /// The corresponding C call is `H5PLset_loading_state`.
    private static let pluginsDisabled: Void = {
        cattn_silence_errors()
        _ = H5PLset_loading_state(0)
    }()

    /// The innermost message of the current thread's error stack (the reason), or nil.
    /// The corresponding C call is `H5Ewalk2`, walking downward: the last frame is where the error was found.
    static func errorReason() -> String? {
        var state: [String] = []
        withUnsafeMutablePointer(to: &state) { pointer in
            _ = H5Ewalk2(
                cattn_h5e_default(), H5E_WALK_DOWNWARD,
                { _, description, context in
                    guard let description, let context else { return 0 }
                    let messages = context.assumingMemoryBound(to: [String].self)
                    if let desc = description.pointee.desc {
                        messages.pointee.append(String(cString: desc))
                    }
                    return 0
                }, UnsafeMutableRawPointer(pointer))
        }
        H5Eclear2(cattn_h5e_default())
        return state.last(where: { !$0.isEmpty })
    }

    /// Throws an error for a failed call (a negative return value) with HDF5's own reason appended.
    static func check<T: BinaryInteger>(_ value: T, file: String, dataset: String?, _ what: @autoclosure () -> String)
        throws -> T
    {
        if value < 0 {
            let reason = errorReason().map { " (\($0))" } ?? ""
            throw AttnError(file: file, dataset: dataset, what() + reason)
        }
        return value
    }
}

/// An HDF5 identifier with one owner, closed in `deinit` by the matching `H5?close`.
/// One libhdf5 identifier, owned: closed in `deinit`. Only valid ids become handles.
final class HDF5Handle {
    enum Kind { case file, group, dataset, dataspace, datatype, attribute, propertyList, object }
    let id: hid_t
    let kind: Kind

    /// nil for an invalid (negative) id: a failed libhdf5 call is never held as a handle.
    init?(_ id: hid_t, _ kind: Kind) {
        guard id >= 0 else { return nil }
        self.id = id
        self.kind = kind
    }

    /// The handle of a call that must succeed: a negative id throws what failed, with libhdf5's reason.
    init(checking id: hid_t, _ kind: Kind, file: String, dataset: String?, _ what: @autoclosure () -> String) throws {
        self.id = try HDF5Library.check(id, file: file, dataset: dataset, what())
        self.kind = kind
    }

    deinit {
        HDF5Library.call {
            switch kind {
            case .file: _ = H5Fclose(id)
            case .group: _ = H5Gclose(id)
            case .dataset: _ = H5Dclose(id)
            case .dataspace: _ = H5Sclose(id)
            case .datatype: _ = H5Tclose(id)
            case .attribute: _ = H5Aclose(id)
            case .propertyList: _ = H5Pclose(id)
            case .object: _ = H5Oclose(id)
            }
        }
    }
}
