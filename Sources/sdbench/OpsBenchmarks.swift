import Foundation
import TensorCore
import Networks

/// One figure for machines: `BENCH {"name":…,"value":…,"unit":…}` on its own line, so runs can be compared.
func emitBench(_ name: String, _ value: Double, _ unit: String) {
    let escaped = name.replacingOccurrences(of: "\"", with: "'")
    print("BENCH {\"name\":\"\(escaped)\",\"value\":\(String(format: "%.6g", value)),\"unit\":\"\(unit)\"}")
}

/// TensorCore kernels at UNet-typical shapes, each beside the same op in PyTorch CPU (fp32, same thread count)
/// measured in the same run by compat/reference/bench_torch_ops.py when the reference Python exists.
enum OpsBenchmarks {
    struct Op {
        let name: String
        let flops: Double
        let run: () -> Void
    }

    static func run(referencePython: String?, threads: Int, repeats: Int) {
        let torch = torchTimes(referencePython, threads: threads, repeats: repeats)
        print("| op | swift ms | GFLOP/s | torch ms | swift/torch |")
        print("|---|---|---|---|---|")
        for op in ops() {
            let seconds = NetworkBenchmarks.time(repeats) { _ in op.run() }
            let t = torch[op.name]
            print(String(format: "| %@ | %.2f | %.1f | %@ | %@ |", op.name, seconds * 1e3, op.flops / seconds / 1e9,
                         t.map { String(format: "%.2f", $0 * 1e3) } ?? "n/a",
                         t.map { String(format: "%.2f", seconds / $0) } ?? "n/a"))
            emitBench("ops/\(op.name)/swift", seconds * 1e3, "ms")
            emitBench("ops/\(op.name)/gflops", op.flops / seconds / 1e9, "GFLOP/s")
            if let t {
                emitBench("ops/\(op.name)/torch", t * 1e3, "ms")
                emitBench("ops/\(op.name)/swift_over_torch", seconds / t, "ratio")
            }
        }
    }

    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var g = TorchGenerator(seed: seed)
        return g.randn(shape)
    }

    static func ops() -> [Op] {
        var list = [Op]()
        for (m, n, k) in [(4096, 2880, 320), (4096, 320, 320), (1024, 1280, 1280)] {
            let a = random([m, k], seed: 1), b = random([k, n], seed: 2)
            list.append(Op(name: "sgemm \(m)x\(n)x\(k)", flops: 2 * Double(m * n * k)) { _ = a.matmul(b) })
        }
        let x = random([1, 320, 64, 64], seed: 3), w = random([320, 320, 3, 3], seed: 4), bias = random([320], seed: 5)
        list.append(Op(name: "conv3x3 320->320 64x64", flops: 2 * 320 * 320 * 9 * 4096) {
            _ = x.conv2d(weight: w, bias: bias, stride: 1, padding: 1)
        })
        let q = random([1, 4096, 320], seed: 6), k = random([1, 4096, 320], seed: 7), v = random([1, 4096, 320], seed: 8)
        list.append(Op(name: "attention 4096x4096 8x40", flops: 4 * 4096 * 4096 * 320) {
            _ = multiHeadAttention(query: q, key: k, value: v, heads: 8)
        })
        let kc = random([1, 77, 320], seed: 9), vc = random([1, 77, 320], seed: 10)
        list.append(Op(name: "attention 4096x77 8x40", flops: 4 * 4096 * 77 * 320) {
            _ = multiHeadAttention(query: q, key: kc, value: vc, heads: 8)
        })
        let gw = random([320], seed: 11), gb = random([320], seed: 12)
        list.append(Op(name: "groupnorm 32g 320ch 64x64", flops: 8 * 320 * 4096) {
            _ = x.groupNorm(groups: 32, weight: gw, bias: gb)
        })
        return list
    }

    /// Seconds per op name from the PyTorch anchor, empty when the reference Python is absent or fails.
    static func torchTimes(_ python: String?, threads: Int, repeats: Int) -> [String: Double] {
        guard let python, FileManager.default.isExecutableFile(atPath: python) else { return [:] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["compat/reference/bench_torch_ops.py", "--threads", String(threads),
                             "--repeats", String(repeats)]
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { return [:] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Double] else { return [:] }
        return object
    }
}
