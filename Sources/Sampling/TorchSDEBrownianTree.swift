import Foundation

/// A normal tensor from a generator freshly seeded with `seed` (A1111's `devices.randn_local`: torch's CPU
/// generator by default, CUDA or NV Philox per the `randn_source` option). Injected by the Pipeline.
public typealias SeededNormal = (_ seed: UInt64, _ shape: [Int]) throws -> Tensor

/// numpy's `SeedSequence` hashing (pool size and spawn key as given), enough to derive torchsde's node seeds.
/// Matches: numpy/random/bit_generator.pyx SeedSequence (get_assembled_entropy, mix_entropy, generate_state)
enum NumpySeedSequence {
    private static let initA: UInt32 = 0x43b0_d7e5, multA: UInt32 = 0x931e_8875
    private static let initB: UInt32 = 0x8b51_f9dd, multB: UInt32 = 0x58f3_8ded
    private static let mixL: UInt32 = 0xca01_f9dd, mixR: UInt32 = 0x4973_f715

    /// Little-endian 32-bit words of a non-negative integer (0 → [0]).
    static func words(_ value: UInt64) -> [UInt32] {
        if value == 0 { return [0] }
        var v = value, out = [UInt32]()
        while v > 0 {
            out.append(UInt32(truncatingIfNeeded: v))
            v >>= 32
        }
        return out
    }

    static func generateState(entropy: UInt64, spawnKey: [UInt64] = [], poolSize: Int = 4, count: Int) -> [UInt32] {
        var run = words(entropy)
        let spawn = spawnKey.flatMap(words)
        if !spawn.isEmpty && run.count < poolSize { run += [UInt32](repeating: 0, count: poolSize - run.count) }
        let entropyArray = run + spawn
        var hashConst = initA
        func hashmix(_ value: UInt32) -> UInt32 {
            var v = value ^ hashConst
            hashConst = hashConst &* multA
            v = v &* hashConst
            return v ^ (v >> 16)
        }
        func mix(_ x: UInt32, _ y: UInt32) -> UInt32 {
            let r = (mixL &* x) &- (mixR &* y)
            return r ^ (r >> 16)
        }
        var pool = (0..<poolSize).map { hashmix($0 < entropyArray.count ? entropyArray[$0] : 0) }
        for src in 0..<poolSize {
            for dst in 0..<poolSize where src != dst { pool[dst] = mix(pool[dst], hashmix(pool[src])) }
        }
        if entropyArray.count > poolSize {
            for src in poolSize..<entropyArray.count {
                for dst in 0..<poolSize { pool[dst] = mix(pool[dst], hashmix(entropyArray[src])) }
            }
        }
        var hb = initB
        return (0..<count).map { i in
            var v = pool[i % poolSize] ^ hb
            hb = hb &* multB
            v = v &* hb
            return v ^ (v >> 16)
        }
    }
}

/// torchsde's `BrownianTree` (a `BrownianInterval` with the dyadic "halfway" tree, tol 1e-6, pool size 24, no
/// Lévy area) for one image: increments W(tb) − W(ta) that depend only on the entropy (the image seed), with the
/// node noises drawn by `normal(seed, shape)` as A1111 patches torchsde to do.
/// Matches: torchsde/_brownian/brownian_interval.py BrownianInterval, _Interval (halfway_tree=True);
/// torchsde/_brownian/derived.py BrownianTree
final class TorchSDEBrownianTree {
    final class Node {
        let start: Double, end: Double
        let parent: Node?
        let isLeft: Bool
        var midway: Double?
        var spawnKey: UInt64 = 0
        var depth: UInt64 = 0
        var wSeed: UInt32 = 0
        var left: Node?, right: Node?
        var cachedW: Tensor?

        init(start: Double, end: Double, parent: Node?, isLeft: Bool) {
            self.start = start
            self.end = end
            self.parent = parent
            self.isLeft = isLeft
        }
    }

    private let entropy: UInt64
    private let shape: [Int]
    private let normal: SeededNormal
    private let root: Node
    private let rootW: Tensor
    private static let poolSize = 24
    private static let cacheSize = 45
    private var cacheOrder: [Node] = []

    init(t0: Double, t1: Double, shape: [Int], entropy: UInt64, normal: @escaping SeededNormal) throws {
        self.entropy = entropy
        self.shape = shape
        self.normal = normal
        root = Node(start: Self.round6(t0), end: Self.round6(t1), parent: nil, isLeft: false)
        let seeds = NumpySeedSequence.generateState(entropy: entropy, poolSize: Self.poolSize, count: 3)
        let w = try normal(UInt64(seeds[0]), shape)
        guard w.shape == shape else { throw TensorError.shapeMismatch(op: "Brownian tree noise", expected: shape, got: w.shape) }
        rootW = w * Float((t1 - t0).squareRoot())
    }

    /// Python's round(x, 6) (the tree's tolerance 1e-6): rounds the exact binary value of x to 6 decimals, ties to
    /// even. Midpoints of 6-decimal values are ties in decimal but usually not in binary, so x·10⁶ is compared
    /// with k + ½ exactly (x·10⁶ = p + e via an error-free FMA product).
    static func round6(_ x: Double) -> Double {
        let scale = 1e6
        let p = x * scale
        let e = (-p).addingProduct(x, scale)       // exact: x·scale − p
        var k = p.rounded(.down)
        if p == k && e < 0 { k -= 1 }
        let a = (p - k) - 0.5                        // exact; compare a + e with 0
        if a > -e || (a == -e && k.truncatingRemainder(dividingBy: 2) != 0) { k += 1 }
        return k / scale
    }

    /// W(tb) − W(ta) for ta ≤ tb (clamped into the tree's range, as torchsde does).
    func increment(_ ta: Double, _ tb: Double) throws -> Tensor {
        let a = min(max(ta, root.start), root.end), b = min(max(tb, root.start), root.end)
        guard a <= b else { throw SamplingError.invalidParameter("Brownian query \(a) > \(b)") }
        if a == b { return Tensor(zeros: shape) }
        var nodes = [Node]()
        locate(root, Self.round6(a), Self.round6(b), &nodes)
        var w = try value(nodes[0])
        for n in nodes.dropFirst() { w += try value(n) }
        return w
    }

    private func split(_ node: Node) {
        guard node.midway == nil else { return }
        let mid = 0.5 * (node.end + node.start)
        node.midway = Self.round6(mid)
        if let p = node.parent {
            node.spawnKey = 2 * p.spawnKey + (node.isLeft ? 0 : 1)
            node.depth = p.depth + 1
        }
        let seeds = NumpySeedSequence.generateState(entropy: entropy, spawnKey: [node.spawnKey, node.depth],
                                                    poolSize: Self.poolSize, count: 4)
        node.wSeed = seeds[0]
        node.left = Node(start: node.start, end: Self.round6(mid), parent: node, isLeft: true)
        node.right = Node(start: Self.round6(mid), end: node.end, parent: node, isLeft: false)
    }

    /// The canonical dyadic cover of [ta, tb], left to right.
    private func locate(_ node: Node, _ ta: Double, _ tb: Double, _ out: inout [Node]) {
        if ta == node.start && tb == node.end {
            out.append(node)
            return
        }
        split(node)
        guard let mid = node.midway, let l = node.left, let r = node.right else { return }
        if mid <= node.start || mid >= node.end {
            // below the tolerance: the interval cannot be divided further
            out.append(node)
            return
        }
        if tb <= mid {
            locate(l, ta, tb, &out)
        } else if ta >= mid {
            locate(r, ta, tb, &out)
        } else {
            locate(l, ta, mid, &out)
            locate(r, mid, tb, &out)
        }
    }

    /// The node's increment: the root's draw, or the Brownian bridge split of the parent's increment.
    private func value(_ node: Node) throws -> Tensor {
        if let w = node.cachedW { return w }
        guard let p = node.parent, let mid = p.midway else { return rootW }
        let parentW = try value(p)
        let hRecip = 1 / (p.end - p.start)
        let leftDiff = mid - p.start, rightDiff = p.end - mid
        let noise = try normal(UInt64(p.wSeed), shape)
        guard noise.shape == shape else {
            throw TensorError.shapeMismatch(op: "Brownian tree noise", expected: shape, got: noise.shape)
        }
        let a = Float(leftDiff), h = Float(hRecip), s = Float((leftDiff * rightDiff * hRecip).squareRoot())
        // left = (leftDiff·W)·(1/h) + √var·noise; right = W − left
        let leftW = parentW.zip(noise) { $0 * a * h + s * $1 }
        let w = node.isLeft ? leftW : parentW - leftW
        node.cachedW = w
        cacheOrder.append(node)
        if cacheOrder.count > Self.cacheSize { cacheOrder.removeFirst().cachedW = nil }
        return w
    }
}

/// A1111's SDE noise: one torchsde Brownian tree per image, entropy = the image seed, over
/// [min positive sigma, max sigma]; each call returns (W(σ_next) − W(σ)) / √|σ_next − σ| stacked over the batch.
/// Matches: k_diffusion/sampling.py BatchedBrownianTree, BrownianTreeNoiseSampler;
/// modules/sd_samplers_common.py Sampler.create_noise_sampler
public final class A1111BrownianNoise {
    private let trees: [TorchSDEBrownianTree]

    /// `imageShape` is one image's latent shape ([C, H, W]); `seeds` the batch's image seeds.
    public init(sigmas: [Float], imageShape: [Int], seeds: [UInt64], normal: @escaping SeededNormal) throws {
        let positive = sigmas.filter { $0 > 0 }
        guard let lo = positive.min(), let hi = sigmas.max(), lo < hi else {
            throw SamplingError.invalidSchedule("no sigma range for Brownian noise")
        }
        guard !seeds.isEmpty else { throw SamplingError.invalidParameter("Brownian noise needs at least one seed") }
        trees = try seeds.map {
            try TorchSDEBrownianTree(t0: Double(lo), t1: Double(hi), shape: imageShape, entropy: $0, normal: normal)
        }
    }

    public func callAsFunction(_ sigma: Float, _ sigmaNext: Float) throws -> Tensor {
        let (a, b, sign): (Float, Float, Float) = sigma < sigmaNext ? (sigma, sigmaNext, 1) : (sigmaNext, sigma, -1)
        let norm = abs(sigmaNext - sigma).squareRoot()
        let parts = try trees.map { try $0.increment(Double(a), Double(b)) }
        let stacked = Tensor.concat(parts.map { $0.reshaped([1] + $0.shape) }, axis: 0)
        return stacked.map { $0 * sign / norm }
    }
}
