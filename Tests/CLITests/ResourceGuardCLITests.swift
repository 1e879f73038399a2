import Testing
import Foundation
import AttnCore
import AttnAnalysis
import AttnTestSupport

@Suite("Command line: --max-memory")
struct ResourceGuardCLITests {
    @Test("sizes parse with binary units; nonsense is refused")
    func sizes() {
        #expect(MemoryBudget.parseSize("512M") == 512 << 20)
        #expect(MemoryBudget.parseSize("1.5GiB") == 3 << 29)
        #expect(MemoryBudget.parseSize("8g") == 8 << 30)
        #expect(MemoryBudget.parseSize("4096") == 4096)
        #expect(
            MemoryBudget.parseSize("lots") == nil && MemoryBudget.parseSize("-1G") == nil
                && MemoryBudget.parseSize("0") == nil)
    }

    @Test("a layer over --max-memory is refused with the estimate and the flag; under it, the run is unchanged")
    func limit() throws {
        let base = Fixtures.path("synthetic/base_f32.npy")
        let refused = try Run(["stats", base, "--max-memory", "1K"])
        #expect(
            refused.status == 1
                && refused.stderr.contains(
                    "needs 1.6 KiB of memory, more than the 1.0 KiB allowed (set by --max-memory)"),
            "\(refused.stderr)")
        let allowed = try Run(["stats", base, "--max-memory", "1M", "--csv"])
        let plain = try Run(["stats", base, "--csv"])
        #expect(allowed.status == 0 && allowed.stdout == plain.stdout)
        #expect(try Run(["stats", base, "--max-memory", "lots"]).status == 64)
        // q and k of a million tokens: a whole layer is refused by its memory, stats (row blocks) and heatmap's
        // default pooled map (streamed) by their time.
        let scratch = try Scratch()
        let huge = try Run(
            [
                "heatmap", Fixtures.path("synthetic/layouts/huge_qk.h5"), "--pool", "1", "-o", scratch.file("x.png"),
                "-q"
            ])
        #expect(huge.stderr.contains("--max-memory SIZE raises it"), "\(huge.stderr)")
        let pooled = try Run(["heatmap", Fixtures.path("synthetic/layouts/huge_qk.h5"), "-o", scratch.file("x.png")])
        #expect(
            pooled.status == 1 && pooled.stderr.contains("pooled 512×512 to 2048 × 2048 cells (mean)")
                && pooled.stderr.contains("positions, estimated at") && pooled.stderr.contains("raise --max-seconds"),
            "\(pooled.stderr)")
        let verify = try Run(["verify", Fixtures.path("synthetic/layouts/huge_qk.h5"), "-q"])
        #expect(verify.status == 2 && verify.stderr.contains("raise --max-seconds"), "\(verify.stderr)")
        let streamed = try Run(["stats", Fixtures.path("synthetic/layouts/huge_qk.h5"), "-q"])
        #expect(streamed.stderr.contains("positions, estimated at") && streamed.stderr.contains("raise --max-seconds"))
    }

    @Test("info reads no layer: over --max-memory it still shows the file, exit 0, and says what one layer needs")
    func infoOverLimit() throws {
        let base = Fixtures.path("synthetic/base_f32.npy")
        // 2 heads × 10 × 10 float32 values, twice (the layer and its analysis): 1600 bytes.
        let limited = try Run(["info", base, "--max-memory", "1K", "-q"])
        #expect(limited.status == 0 && limited.stderr.isEmpty, "\(limited.stderr)")
        #expect(
            limited.stdout.contains(
                """
                layers: 3, heads: 2, queries: 10, keys: 10\n  memory for one layer's work: 1.6 KiB (other \
                commands refuse it: one layer of 2 heads × 10 queries × 10 keys needs 1.6 KiB of memory, more \
                than the 1.0 KiB allowed (set by --max-memory))\n
                """
            ), "\(limited.stdout)")
        #expect(try Run(["info", base]).stdout.contains("memory for one layer's work: 1.6 KiB\n"))
        let huge = try Run(["info", Fixtures.path("synthetic/layouts/huge_qk.h5")])
        #expect(
            huge.status == 0 && huge.stdout.contains("other commands refuse it:")
                && huge.stdout.contains("--max-memory SIZE raises it"), "\(huge.stdout)\(huge.stderr)")
    }

    @Test(
        """
        a full rollout matrix over --max-seconds or --max-memory is refused before any work, with the estimate; \
        nothing is written
        """
    )
    func rollout() throws {
        let scratch = try Scratch()
        let board = Fixtures.path("real/vits14_board_small.h5")
        let out = scratch.file("r.npy")
        let slow = try Run(["rollout", board, "--view", "matrix", "--max-seconds", "0.0001", "-o", out])
        #expect(slow.status == 1 && !FileManager.default.fileExists(atPath: out), "\(slow.stderr)")
        #expect(
            slow.stderr.contains(
                """
                the full 257 × 257 rollout matrix through 3 layers is 2 products of 257 × 257 matrices (6.8e+07 \
                flop), estimated at
                """
            ), "\(slow.stderr)")
        #expect(
            slow.stderr.contains(
                """
                over --max-seconds 1.0e-04: use the grid view (--view grid: one row, 257× less) or fewer layers \
                (--start-layer, --end-layer), or raise --max-seconds\n
                """
            ), "\(slow.stderr)")
        // Two workers (fixed here: the estimate counts a partial sum per worker): 257² × (6 heads × 8 + 2 × 3 × 8 + 12)
        // bytes.
        let big = try Run(
            ["rollout", board, "--view", "matrix", "--max-memory", "4M", "-o", out],
            environment: ["ATTNINSPECT_THREADS": "2"])
        #expect(big.status == 1 && !FileManager.default.fileExists(atPath: out))
        #expect(Rollout.workingSetBytes(tokens: 257, heads: 6, fullMatrix: true, workers: 2) == 257 * 257 * 108)
        #expect(
            big.stderr.contains(
                """
                the full 257 × 257 rollout matrix through 3 layers needs 6.8 MiB of memory, more than the 4.0 MiB \
                allowed (set by --max-memory)
                """
            ), "\(big.stderr)")
        let gradients = try Run([
            "rollout", Fixtures.path("synthetic/gradients/attn_grad.npz"), "--gradients", "--view", "matrix",
            "--max-seconds", "0.0000001", "-o", out
        ])
        #expect(gradients.status == 1 && gradients.stderr.contains("--max-seconds"), "\(gradients.stderr)")
        #expect(try Run(["rollout", board, "--max-seconds", "0", "-o", out]).status == 64)
        let fine = try Run(["rollout", board, "--view", "matrix", "-o", out])
        #expect(fine.status == 0 && FileManager.default.fileExists(atPath: out))
    }

    @Test("the rollout estimates grow as n² per layer read and n³ per product")
    func rolloutEstimates() {
        let small = Rollout.estimatedSeconds(
            tokens: 4096, layers: 12, heads: 12, products: 11, fullMatrix: true, workers: 2)
        let large = Rollout.estimatedSeconds(
            tokens: 8192, layers: 12, heads: 12, products: 11, fullMatrix: true, workers: 2)
        #expect(large / small > 7 && large / small < 8.001)
        let row = Rollout.estimatedSeconds(
            tokens: 8192, layers: 12, heads: 12, products: 12, fullMatrix: false, workers: 2)
        let halfRow = Rollout.estimatedSeconds(
            tokens: 4096, layers: 12, heads: 12, products: 12, fullMatrix: false, workers: 2)
        #expect(row < large / 2 && abs(row / halfRow - 4) < 1e-9)
        // Per token²: the layer read (2 heads × 4 bytes, and its read buffer), per workspace the fused map and
        // one partial sum per worker (8 bytes each), and 3 float matrices (1 for a row).
        #expect(
            Rollout.workingSetBytes(tokens: 1000, heads: 2, fullMatrix: true, workers: 2) == 1_000_000
                * (16 + 2 * 3 * 8 + 12))
        #expect(
            Rollout.workingSetBytes(tokens: 1000, heads: 2, fullMatrix: true, workers: 1) == 1_000_000
                * (16 + 2 * 8 + 12))
        #expect(
            Rollout.workingSetBytes(tokens: 1000, heads: 2, fullMatrix: false, workers: 4) == 1_000_000
                * (16 + 3 * 8 + 4))
        #expect(Rollout.workingSetBytes(tokens: 1 << 32, heads: 2, fullMatrix: true) == nil)
    }
}
