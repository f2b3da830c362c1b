import Foundation
import Networks
import TensorCore

/// Benchmarks of the full-size SD1.5 networks on random weights: CLIP encode (cond + uncond, `[2, 77]`), UNet
/// step (CFG batch 2) at 512 and 256, VAE decode at 512, one whole 20-step 512×512 txt2img image
/// (ImageBenchmarks), peak RSS, the GEMM floor (network FLOPs / measured sgemm rate), and the PyTorch CPU anchor
/// (compat/reference/bench_torch_unet.py) in the same run when the reference Python is present.
enum NetworkBenchmarks {
    struct Options {
        var manifest = "fixtures/sd15/manifest.json"
        var repeats = 2
        var referencePython: String? = ProcessInfo.processInfo.environment["REF_PY"] ?? "/work/refvenv/bin/python"
        var torchThreads = 2
        var sizes = [512, 256]
        var vae = true
        var clip = true
        var image = true
        /// Size and sampling steps of the whole-image benchmark.
        var imageSize = 512
        var steps = 20

        static let usage = """
            sdbench networks [--sizes 512,256] [--repeats N] [--no-unet] [--no-vae] [--no-clip] [--no-image] \
                             [--image-size 512] [--steps 20] [--no-torch] [--torch-threads N] \
                             [--manifest fixtures/sd15/manifest.json]
            """

        /// Parses the arguments after the group name; throws a message naming the bad argument.
        init(arguments: [String] = []) throws {
            var rest = arguments[...]
            func value(_ flag: String) throws -> String {
                guard let v = rest.popFirst() else { throw BenchmarkError.usage("\(flag) needs a value\n\(Self.usage)") }
                return v
            }
            while let arg = rest.popFirst() {
                switch arg {
                case "--sizes":
                    let text = try value(arg)
                    sizes = try text.split(separator: ",").map {
                        guard let size = Int($0), size > 0, size % 64 == 0 else {
                            throw BenchmarkError.usage("--sizes: '\($0)' is not a positive multiple of 64")
                        }
                        return size
                    }
                case "--repeats":
                    guard let n = Int(try value(arg)), n >= 1 else { throw BenchmarkError.usage("--repeats needs N ≥ 1") }
                    repeats = n
                case "--torch-threads":
                    guard let n = Int(try value(arg)), n >= 1 else {
                        throw BenchmarkError.usage("--torch-threads needs N ≥ 1")
                    }
                    torchThreads = n
                case "--image-size":
                    guard let n = Int(try value(arg)), n > 0, n % 64 == 0 else {
                        throw BenchmarkError.usage("--image-size needs a positive multiple of 64")
                    }
                    imageSize = n
                case "--steps":
                    guard let n = Int(try value(arg)), n >= 1 else {
                        throw BenchmarkError.usage("--steps needs N ≥ 1")
                    }
                    steps = n
                case "--manifest": manifest = try value(arg)
                case "--no-vae": vae = false
                case "--no-clip": clip = false
                case "--no-image": image = false
                case "--no-unet": sizes = []
                case "--no-torch": referencePython = nil
                default: throw BenchmarkError.usage("unknown argument '\(arg)'\n\(Self.usage)")
                }
            }
        }
    }

    enum BenchmarkError: Error, CustomStringConvertible {
        case usage(String)
        /// A benchmark could not run as meant.
        case failed(String)
        var description: String {
            switch self {
            case .usage(let message), .failed(let message): return message
            }
        }
    }

    static func run(_ options: Options) throws {
        AllocatorPolicy.reuseFreedMemory()
        let source = try RandomTensorSource(manifest: options.manifest)
        let start = Date()
        let unet = !options.sizes.isEmpty || options.image
            ? try UNetModel(WeightReader(source, prefix: "model.diffusion_model")) : nil
        let vae = options.vae || options.image
            ? try AutoencoderKL(WeightReader(source, prefix: "first_stage_model")) : nil
        let text = options.clip || options.image ? try ImageBenchmarks.textEncoder(source) : nil
        print(String(format: "weights: %.1f s to generate and build (random, full SD1.5 shapes)",
                     Date().timeIntervalSince(start)))
        let gemm = sgemmRate()
        print(String(format: "sgemm rate: %.1f GFLOP/s (2048×4096×2880)", gemm / 1e9))
        emitBench("networks/sgemm 2048x4096x2880", gemm / 1e9, "GFLOP/s")
        print("| stage | shape | swift s | floor s | swift/floor | torch s | swift/torch |")
        print("|---|---|---|---|---|---|---|")
        if options.clip, let text {
            try ImageBenchmarks.clipRow(text, source: source, options: options, gemm: gemm)
        }
        for size in options.sizes {
            guard let unet else { continue }
            let latent = size / 8
            let x = RandomTensorSource.random([2, 4, latent, latent], seed: 1, bound: 1)
            let context = RandomTensorSource.random([2, 77, 768], seed: 2, bound: 1)
            let seconds = try time(options.repeats) { _ in _ = try unet(x, timesteps: [500, 500], context: context) }
            let flops = UNetFLOPs.count(unet.config, batch: 2, height: latent, width: latent, contextTokens: 77)
            let torch = torchSeconds(options, stage: "unet", size: size)
            row("UNet step CFG", "2×4×\(latent)×\(latent)", seconds, flops / gemm, torch)
        }
        if options.vae, let vae {
            let z = RandomTensorSource.random([1, 4, 64, 64], seed: 3, bound: 1)
            let seconds = try time(options.repeats) { _ in _ = try vae.decode(z) }
            row("VAE decode", "1×4×64×64", seconds, VAEFLOPs.decode(vae.config, height: 64, width: 64) / gemm,
                torchSeconds(options, stage: "vae", size: 512))
        }
        if options.image, let unet, let vae, let text {
            try ImageBenchmarks.imageRow(unet: unet, vae: vae, text: text, source: source, options: options,
                                         gemm: gemm)
        }
        print(String(format: "peak RSS: %.2f GiB", Double(peakRSSBytes()) / Double(1 << 30)))
        emitBench("networks/peak RSS", Double(peakRSSBytes()) / Double(1 << 30), "GiB")
    }

    static func row(_ stage: String, _ shape: String, _ seconds: Double, _ floor: Double, _ torch: Double?) {
        let t = torch.map { String(format: "%.2f", $0) } ?? "n/a"
        let ratio = torch.map { String(format: "%.2f", seconds / $0) } ?? "n/a"
        print(String(format: "| %@ | %@ | %.2f | %.2f | %.2f | %@ | %@ |", stage, shape, seconds, floor,
                     seconds / floor, t, ratio))
        emitBench("networks/\(stage) \(shape)/swift", seconds, "s")
        emitBench("networks/\(stage) \(shape)/swift_over_floor", seconds / floor, "ratio")
        if let torch {
            emitBench("networks/\(stage) \(shape)/torch", torch, "s")
            emitBench("networks/\(stage) \(shape)/swift_over_torch", seconds / torch, "ratio")
        }
    }

    /// Best of `repeats` runs after one warm-up run.
    static func time(_ repeats: Int, _ body: (Int) throws -> Void) rethrows -> Double {
        try body(-1)
        var best = Double.infinity
        for i in 0..<max(repeats, 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body(i)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return best
    }

    /// FLOP/s of one large sgemm shaped like the UNet's 3×3 convolutions at 64×64 (best of 3).
    static func sgemmRate() -> Double {
        let (m, n, k) = (2048, 4096, 2880)
        let a = [Float](repeating: 0.01, count: m * k), b = [Float](repeating: 0.02, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        let seconds = time(3) { _ in
            c.withUnsafeMutableBufferPointer { cp in
                guard let out = cp.baseAddress else { return }
                sgemm(m: m, n: n, k: k, a: a, b: b, c: out)
            }
        }
        return 2 * Double(m * n * k) / seconds
    }

    /// Seconds per stage from compat/reference/bench_torch_unet.py, or nil when the reference Python is absent.
    static func torchSeconds(_ options: Options, stage: String, size: Int, steps: Int? = nil) -> Double? {
        guard let python = options.referencePython, FileManager.default.isExecutableFile(atPath: python) else {
            return nil
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["compat/reference/bench_torch_unet.py", "--stage", stage, "--size", String(size),
                             "--threads", String(options.torchThreads), "--repeats", String(options.repeats)]
            + (steps.map { ["--steps", String($0)] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let seconds = object["seconds"] as? Double else { return nil }
        return seconds
    }

    static func peakRSSBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        return 0
    }
}

/// Random weights for every key of a manifest (keys and shapes of a real checkpoint), made on request: weights
/// uniform in ±1/√fan_in (PyTorch's default init scale), norm scales 1, biases small, position ids 0, 1, 2, ….
struct RandomTensorSource: TensorSource {
    let shapes: [String: [Int]]
    let keys: [String]

    init(manifest path: String) throws {
        struct Manifest: Decodable {
            struct Entry: Decodable { let shape: [Int] }
            let tensors: [String: Entry]
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        shapes = try JSONDecoder().decode(Manifest.self, from: data).tensors.mapValues(\.shape)
        keys = shapes.keys.sorted()
    }

    func shape(of key: String) -> [Int]? { shapes[key] }

    func tensor(_ key: String) throws -> Tensor {
        guard let shape = shapes[key] else { throw TensorError.missingKey(key) }
        let seed = UInt64(truncatingIfNeeded: key.utf8.reduce(14_695_981_039_346_656_037) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 })
        if shape.count == 1 && (key.contains("norm") && key.hasSuffix(".weight")) {
            return Tensor(repeating: 1, shape: shape)
        }
        if key.hasSuffix(".position_ids") {
            return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map(Float.init))
        }
        let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
        return Self.random(shape, seed: seed, bound: shape.count > 1 ? 1 / Float(fanIn).squareRoot() : 0.02)
    }

    /// Uniform values in ±bound from a SplitMix64 stream.
    static func random(_ shape: [Int], seed: UInt64, bound: Float) -> Tensor {
        var state = seed
        return Tensor(uninitialized: shape) { out in
            for i in 0..<out.count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                out[i] = (Float(z >> 40) / Float(1 << 24) * 2 - 1) * bound
            }
        }
    }
}
