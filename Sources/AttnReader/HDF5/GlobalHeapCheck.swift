import AttnCore
internal import CAttnHDF5

/// Checks a dataset of variable-length strings against its global heap before libhdf5 reads it.
///
/// libhdf5 1.10 keeps variable-length strings in global heap collections and trusts their object sizes
/// when it copies a string out (`H5HG_read`): a corrupted collection made it copy from a bad pointer and
/// crash (found by the HDF5 mutation run). This re-reads what libhdf5 would follow, with `pread`, and
/// refuses the dataset when a reference or an object does not fit: every string of a contiguous dataset is
/// (length, collection address, object index), its object exactly `length` bytes; every collection is `GCOL`, version 1, its size, then
/// objects (index, reference count, reserved, size, data padded to 8 bytes) and free space, to its end.
/// Only contiguous storage is checked (what h5py writes for labels); compact and chunked datasets are read
/// as before.
enum GlobalHeapCheck {
    /// The file's address and length sizes and the base address (the user block), from the creation properties.
    struct FileGeometry {
        let offsetSize: Int
        let lengthSize: Int
        let base: Int

        init?(file: hid_t) {
            var addressSize = 0, lengthSize = 0
            var userBlock: hsize_t = 0
            guard let plist = HDF5Handle(H5Fget_create_plist(file), .propertyList), H5Pget_sizes(plist.id, &addressSize, &lengthSize) >= 0, H5Pget_userblock(plist.id, &userBlock) >= 0,
                  [2, 4, 8].contains(addressSize), [2, 4, 8].contains(lengthSize), userBlock <= UInt64(Int.max) else {
                _ = HDF5Library.errorReason()
                return nil
            }
            offsetSize = addressSize
            self.lengthSize = lengthSize
            base = Int(userBlock)
        }
    }

    /// Throws when a string of `dataset` points outside its collection or a collection is malformed.
    static func check(dataset: hid_t, count: Int, file: hid_t, raw: ReadOnlyFile, path: String, name: String) throws {
        guard let plist = HDF5Handle(H5Dget_create_plist(dataset), .propertyList), H5Pget_layout(plist.id) == H5D_CONTIGUOUS, let geometry = FileGeometry(file: file) else {
            _ = HDF5Library.errorReason()
            return
        }
        let elementSize = 4 + geometry.offsetSize + 4
        let offset = H5Dget_offset(dataset)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard offset != cattn_haddr_undef(), offset <= UInt64(Int.max), count > 0, !overflow,
              H5Dget_storage_size(dataset) == UInt64(bytes) else {
            _ = HDF5Library.errorReason()
            return   // not allocated (every string is the fill value) or not laid out as expected: nothing to follow
        }
        func corrupt(_ what: String) -> AttnError {
            AttnError(file: path, dataset: name, "\(what): the file is corrupt (its variable-length strings cannot be read safely)")
        }
        let elements = try raw.bytes(at: Int(offset), count: count * elementSize, dataset: name)
        var collections: [Int: [Int: Int]] = [:]   // collection address → object index → object size
        for i in 0..<count {
            let e = i * elementSize
            let length = Int(little(elements, at: e, size: 4))
            let address = little(elements, at: e + 4, size: geometry.offsetSize)
            let index = Int(little(elements, at: e + 4 + geometry.offsetSize, size: 4))
            if address == 0 { continue }   // a null or empty string: libhdf5 reads nothing from the heap
            guard address <= UInt64(Int.max - geometry.base) else { throw corrupt("string \(i) refers to a heap at an impossible address") }
            let at = geometry.base + Int(address)
            if collections[at] == nil { collections[at] = try objects(at: at, geometry: geometry, raw: raw, name: name, corrupt: corrupt) }
            guard let size = collections[at]?[index] else { throw corrupt("string \(i) refers to object \(index), which its heap collection at \(at) does not hold") }
            // libhdf5 copies the whole object into a buffer of the string's length: they must agree.
            guard length == size else { throw corrupt("string \(i) is \(length) bytes long but its heap object holds \(size)") }
        }
    }

    /// The objects of the collection at `at`: index → size, each checked to lie inside the collection.
    private static func objects(at: Int, geometry: FileGeometry, raw: ReadOnlyFile, name: String,
                                corrupt: (String) -> AttnError) throws -> [Int: Int] {
        let headerSize = aligned(8 + geometry.lengthSize)   // libhdf5 pads the collection header to 8 bytes
        guard at <= raw.size - headerSize else { throw corrupt("a heap collection at \(at) lies beyond the end of the file (\(raw.size) bytes)") }
        let header = try raw.bytes(at: at, count: headerSize, dataset: name)
        guard header[0..<4].elementsEqual("GCOL".utf8), header[4] == 1 else { throw corrupt("no global heap collection (GCOL, version 1) at \(at)") }
        let declared = little(header, at: 8, size: geometry.lengthSize)
        guard declared >= UInt64(headerSize), declared <= UInt64(raw.size - at) else {
            throw corrupt("the heap collection at \(at) claims \(declared) bytes, more than the file holds after it")
        }
        let size = Int(declared)
        let bytes = try raw.bytes(at: at, count: size, dataset: name)
        let objectHeader = aligned(8 + geometry.lengthSize)   // and each object's header
        var result: [Int: Int] = [:]
        // The walk libhdf5 makes when it loads the collection (`H5HG__cache_heap_deserialize`): every object up to
        // the collection's end, the free-space object 0 included (its size is unpadded and counts its header). A
        // step that does not advance made libhdf5 loop forever; one past the end, read out of bounds.
        var p = headerSize
        while p < size {
            if p + objectHeader > size { break }   // too small for an object header: free space
            let index = Int(little(bytes, at: p, size: 2))
            let objectSize = little(bytes, at: p + 8, size: geometry.lengthSize)
            guard objectSize <= UInt64(size - p) else {
                throw corrupt("object \(index) of the heap collection at \(at) claims \(objectSize) bytes, past the collection's end")
            }
            let step = index == 0 ? Int(objectSize) : objectHeader + aligned(Int(objectSize))
            guard step > 0, p + step <= size else {
                throw corrupt("object \(index) of the heap collection at \(at) (\(objectSize) bytes) overlaps the collection's end or has no size")
            }
            if index > 0 {
                guard result[index] == nil else { throw corrupt("the heap collection at \(at) holds object \(index) twice") }
                result[index] = Int(objectSize)
            }
            p += step
        }
        return result
    }

    /// `n` rounded up to a multiple of 8, as libhdf5 aligns the heap's headers and objects.
    private static func aligned(_ n: Int) -> Int { (n + 7) & ~7 }

    /// An unsigned little-endian integer of `size` bytes.
    private static func little(_ bytes: [UInt8], at offset: Int, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for k in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + k]) }
        return value
    }
}
