import Testing
import Foundation
import AttnCore
import AttnTestSupport

@Suite("Command line: --max-memory")
struct ResourceGuardCLITests {
    @Test("sizes parse with binary units; nonsense is refused")
    func sizes() {
        #expect(MemoryBudget.parseSize("512M") == 512 << 20)
        #expect(MemoryBudget.parseSize("1.5GiB") == 3 << 29)
        #expect(MemoryBudget.parseSize("8g") == 8 << 30)
        #expect(MemoryBudget.parseSize("4096") == 4096)
        #expect(MemoryBudget.parseSize("lots") == nil && MemoryBudget.parseSize("-1G") == nil && MemoryBudget.parseSize("0") == nil)
    }

    @Test("a layer over --max-memory is refused with the estimate and the flag; under it, the run is unchanged")
    func limit() throws {
        let base = Fixtures.path("synthetic/base_f32.npy")
        let refused = try Run(["stats", base, "--max-memory", "1K"])
        #expect(refused.status == 1 && refused.stderr.contains("needs 1.6 KiB of memory, more than the 1.0 KiB allowed for one layer (set by --max-memory)"), "\(refused.stderr)")
        let allowed = try Run(["stats", base, "--max-memory", "1M", "--csv"])
        let plain = try Run(["stats", base, "--csv"])
        #expect(allowed.status == 0 && allowed.stdout == plain.stdout)
        #expect(try Run(["stats", base, "--max-memory", "lots"]).status == 64)
        let huge = try Run(["stats", Fixtures.path("synthetic/layouts/huge_qk.h5")])
        #expect(huge.stderr.contains("--max-memory SIZE raises it"))
    }
}
