import Testing
import Foundation
import AttnCore
import AttnTestSupport

/// HDF5 files mutated by scripts/mutate_hdf5.py that once crashed attninspect (an overflowing claimed
/// shape, a value too large for the table, a chunk larger than its dataset that made libhdf5 read past
/// its buffers, an extent beyond its maximum that made stats allocate for 2³¹ layers). Each must now give
/// one line on stderr and exit 0 or 1, promptly.
@Suite("Command line: mutated HDF5 files (regressions from the mutation run)")
struct MutantCLITests {
    static let mutants = ["big_endian.m3", "cross_vision.m5", "huge_attention.m1", "layers_numbered.m7", "padded_mask_bool.m5",
                          "per_layer_grads.m13", "single_f32.m1", "single_f32.m5", "userblock_gzip.m9", "nested_single.m39"]

    @Test("info and stats end cleanly", arguments: mutants)
    func clean(name: String) throws {
        let path = Fixtures.path("synthetic/bad/mutants/\(name).h5")
        for command in ["info", "stats"] {
            let r = try Run([command, path])
            #expect(r.status == 0 || (r.status == 1 && r.stderr.filter { $0 == "\n" }.count == 1), "\(command) \(name): \(r.status) \(r.stderr)")
        }
    }
}
