import Foundation
import ModelIO
import Testing
import TestSupport
@testable import TensorCore

/// Streams recorded by compat/reference/gen_rng.py from torch 2.13 (CPU) and A1111's rng_philox.py.
/// Every comparison is bit-exact (`==` on the float32 bit patterns), no tolerance.
struct StreamSpec: Decodable {
    let seeds: [UInt64]
    let sizes: [[Int]]
    let sequence: [[Int]]
    let generic_seeds: [UInt64]
    let generic_sizes: [[Int]]

    static func load() throws -> StreamSpec { try Fixtures.json("rng/streams.json") }
}

func sizeName(_ size: [Int]) -> String { size.map(String.init).joined(separator: "x") }

/// Indices where the bit patterns differ (empty when identical), with the count of differences.
func bitDifferences(_ a: Tensor, _ b: Tensor) -> (count: Int, first: [Int]) {
    guard a.shape == b.shape else { return (max(a.count, b.count), [-1]) }
    var diffs = [Int]()
    for i in 0..<a.count where a.scalars[i].bitPattern != b.scalars[i].bitPattern { diffs.append(i) }
    return (diffs.count, Array(diffs.prefix(5)))
}

@Suite struct TorchGeneratorTests {
    @Test func mt19937MatchesNumpyRandomStateWords() throws {
        struct Words: Decodable { let first: [UInt32]; let word10000: UInt32 }
        let table: [String: Words] = try Fixtures.json("rng/mt19937.json")
        #expect(table.count == 3)
        for (seed, words) in table {
            var engine = MT19937(seed: try #require(UInt64(seed)))
            let got = (0..<10000).map { _ in engine.next32() }
            #expect(Array(got.prefix(words.first.count)) == words.first, "seed \(seed)")
            #expect(got[9999] == words.word10000, "seed \(seed)")
        }
    }

    @Test func freshGeneratorsMatchTorchForEverySeedAndSize() throws {
        let spec = try StreamSpec.load()
        let file = try Fixtures.safetensors("rng/torch_randn.safetensors")
        for seed in spec.seeds {
            for size in spec.sizes {
                var g = TorchGenerator(seed: seed)
                let got = g.randn(size)
                let want = try file.tensor("s\(seed).\(sizeName(size))")
                let d = bitDifferences(got, want)
                #expect(d.count == 0, "seed \(seed) size \(size): \(d.count) values differ, first at \(d.first)")
            }
        }
    }

    @Test func successiveDrawsShareTheGeneratorAndItsCachedNormal() throws {
        let spec = try StreamSpec.load()
        let file = try Fixtures.safetensors("rng/torch_randn.safetensors")
        for seed in spec.seeds {
            var g = TorchGenerator(seed: seed)
            for (i, size) in spec.sequence.enumerated() {
                let d = bitDifferences(g.randn(size), try file.tensor("seq.s\(seed).\(i)"))
                #expect(d.count == 0, "seed \(seed) draw \(i) \(size): \(d.count) differ at \(d.first)")
            }
        }
    }

    @Test func portableKernelMatchesTorchDefaultCapability() throws {
        let spec = try StreamSpec.load()
        let file = try Fixtures.safetensors("rng/torch_randn_generic.safetensors")
        for seed in spec.generic_seeds {
            for size in spec.generic_sizes {
                var g = TorchGenerator(seed: seed, kernel: .generic)
                let d = bitDifferences(g.randn(size), try file.tensor("s\(seed).\(sizeName(size))"))
                #expect(d.count == 0, "seed \(seed) size \(size): \(d.count) values differ, first at \(d.first)")
            }
        }
    }

    @Test func seedsWrapLikeManualSeed() {
        // manual_seed(-1) is 2^64 - 1, and only the low 32 bits reach mt19937.
        var negative = TorchGenerator(seed: UInt64(bitPattern: -1))
        var wrapped = TorchGenerator(seed: UInt64(UInt32.max))
        #expect(negative.randn([20]) == wrapped.randn([20]))
    }

    @Test func reseedingClearsTheCachedNormal() {
        var g = TorchGenerator(seed: UInt64(7))
        _ = g.randn([1])          // leaves the sine half cached
        g.manualSeed(7)
        var fresh = TorchGenerator(seed: UInt64(7))
        #expect(g.randn([3]) == fresh.randn([3]))
    }
}

@Suite struct PhiloxGeneratorTests {
    @Test func freshGeneratorsMatchA1111ForEverySeedAndSize() throws {
        let spec = try StreamSpec.load()
        let file = try Fixtures.safetensors("rng/philox_randn.safetensors")
        for seed in spec.seeds {
            for size in spec.sizes {
                var g = PhiloxGenerator(seed: seed)
                let d = bitDifferences(g.randn(size), try file.tensor("s\(seed).\(sizeName(size))"))
                #expect(d.count == 0, "seed \(seed) size \(size): \(d.count) values differ, first at \(d.first)")
            }
        }
    }

    @Test func successiveDrawsAdvanceTheOffset() throws {
        let spec = try StreamSpec.load()
        let file = try Fixtures.safetensors("rng/philox_randn.safetensors")
        for seed in spec.seeds {
            var g = PhiloxGenerator(seed: seed)
            for (i, size) in spec.sequence.enumerated() {
                let d = bitDifferences(g.randn(size), try file.tensor("seq.s\(seed).\(i)"))
                #expect(d.count == 0, "seed \(seed) draw \(i) \(size): \(d.count) differ at \(d.first)")
            }
            #expect(g.offset == UInt32(spec.sequence.count))
        }
    }
}
