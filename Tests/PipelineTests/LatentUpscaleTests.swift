import Testing
import TestSupport
@testable import Pipeline

/// Fixture: compat/reference/gen_pipeline.py (torch.nn.functional.interpolate with A1111's modes).
@Suite struct LatentUpscaleTests {
    @Test(arguments: LatentUpscaleMode.allCases)
    func matchesTorchInterpolate(mode: LatentUpscaleMode) throws {
        let file = try Fixtures.safetensors("pipeline/latent_upscale.safetensors")
        let x = try file.tensor("x")
        for (h, w) in [(10, 14), (11, 13), (8, 9), (3, 4)] {
            let expected = try file.tensor("\(mode.rawValue)@\(h)x\(w)")
            let got = mode.resize(x, height: h, width: w)
            let c = Closeness(got, expected)
            // Float32 accumulation in a different order than ATen: a few ulps.
            #expect(c.maxAbs < 1e-5, "\(mode.rawValue) \(h)x\(w): \(c)")
        }
    }
}

/// Expected values worked through A1111's calculate_target_resolution by hand from its formulas.
@Suite struct HiresTargetTests {
    @Test func scaleOnly() {
        let t = HiresFix(scale: 1.5).target(width: 512, height: 768)
        #expect(t.width == 768 && t.height == 1152 && t.truncateX == 0 && t.truncateY == 0)
    }

    @Test func oneSideKeepsAspect() {
        let t = HiresFix(resizeX: 1024).target(width: 512, height: 768)
        #expect(t.width == 1024 && t.height == 1536)
        let u = HiresFix(resizeY: 1000).target(width: 512, height: 768)
        #expect(u.width == 666 && u.height == 1000)
    }

    @Test func bothSidesCoverThenCrop() {
        // 512x768 (ratio 0.667) into 1024x1024: upscale to 1024x1536, crop (1536-1024)/8 = 64 latent rows.
        let t = HiresFix(resizeX: 1024, resizeY: 1024).target(width: 512, height: 768)
        #expect(t.width == 1024 && t.height == 1536 && t.truncateX == 0 && t.truncateY == 64)
    }
}
