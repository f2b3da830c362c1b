import Foundation
import Testing
import TestSupport
import ModelIO
import Networks
import Sampling
@testable import Pipeline

/// Full-size SD1.5 checkpoints in the real single-file layout (every key, shape and non-weight dtype of
/// fixtures/sd15/manifest.json, the v1-5-pruned-emaonly release), with the weights stored as fp16 and as bf16:
/// the loader and every network must consume the file exactly, and values must come back as the stored numbers.
/// The file image is built in memory (2.1 GB, random finite weights) so the test needs no free disk.
@Suite(.serialized) struct FullSizeCheckpointTests {
    struct Manifest: Decodable {
        struct Entry: Decodable { let dtype: String; let shape: [Int] }
        let tensors: [String: Entry]
    }

    /// 32 Ki finite half-width values of magnitude 2⁻⁷…1 (either sign), repeated over every weight.
    static func pattern(bf16: Bool) -> [UInt16] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<32_768).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let r = UInt16(truncatingIfNeeded: state >> 33)
            let sign = r & 0x8000
            return bf16 ? sign | (0x78 + (r >> 7) % 7) << 7 | (r & 0x7F)
                        : sign | (0x08 + (r >> 10) % 7) << 10 | (r & 0x3FF)
        }
    }

    /// A safetensors image of the manifest: weights (F32 in the release) stored as `dtype`; the DDPM buffers
    /// in F32 with SD1's schedule; `position_ids` 0…76 as I64; the EMA counters as stored.
    static func image(dtype: String, pattern: [UInt16]) throws -> (Data, [String: Int]) {
        let manifest: Manifest = try Fixtures.json("sd15/manifest.json")
        let keys = manifest.tensors.keys.sorted()
        var header = [String: Any](), offsets = [String: Int](), size = 0
        func isBuffer(_ key: String) -> Bool { !key.contains(".") || key.hasPrefix("model_ema.") }
        for key in keys {
            let e = manifest.tensors[key]!
            let stored = e.dtype == "F32" && !isBuffer(key) ? dtype : e.dtype
            let bytes = e.shape.reduce(1, *) * ["F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4][stored, default: 4]
            header[key] = ["dtype": stored, "shape": e.shape, "data_offsets": [size, size + bytes]]
            offsets[key] = size
            size += bytes
        }
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var data = Data(count: 8 + json.count + size)
        let base = 8 + json.count
        let alphas = NoiseSchedule.sd1.alphasCumprod
        data.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt64(json.count).littleEndian, as: UInt64.self)
            json.copyBytes(to: raw.baseAddress!.advanced(by: 8).assumingMemoryBound(to: UInt8.self), count: json.count)
            pattern.withUnsafeBytes { p in
                for key in keys {
                    let e = manifest.tensors[key]!, start = base + offsets[key]!
                    let count = e.shape.reduce(1, *)
                    if isBuffer(key) || e.dtype != "F32" {
                        for i in 0..<count {
                            switch e.dtype {
                            case "I64": raw.storeBytes(of: Int64(i).littleEndian, toByteOffset: start + i * 8, as: Int64.self)
                            case "I32": raw.storeBytes(of: Int32(0), toByteOffset: start + i * 4, as: Int32.self)
                            default:
                                let v: Float = key.hasPrefix("alphas_cumprod") && count == alphas.count ? alphas[i] : 0.5
                                raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: start + i * 4, as: UInt32.self)
                            }
                        }
                        continue
                    }
                    var done = 0
                    while done < count * 2 {
                        let n = min(p.count, count * 2 - done)
                        (raw.baseAddress! + start + done).copyMemory(from: p.baseAddress!, byteCount: n)
                        done += n
                    }
                }
            }
        }
        return (data, offsets)
    }

    static func widen(_ bits: UInt16, bf16: Bool) -> Float {
        bf16 ? Float(bitPattern: UInt32(bits) << 16) : Float(Float16(bitPattern: bits))
    }

    @Test(arguments: ["F16", "BF16"])
    func loadsEveryNetworkKeyForKey(dtype: String) throws {
        let bf16 = dtype == "BF16"
        let pattern = Self.pattern(bf16: bf16)
        let (data, _) = try Self.image(dtype: dtype, pattern: pattern)
        let file = try SafetensorsFile(data: data, name: "sd15-random-\(dtype).safetensors")
        #expect(file.keys.count == 1145)
        let root = WeightReader(file)

        let unetScope = root["model"]["diffusion_model"]
        let unet = try UNetModel(unetScope)
        #expect(unet.config == .sd1)
        #expect(unetScope.unusedKeys().isEmpty && unetScope.missingKeys().isEmpty)
        let vaeScope = root["first_stage_model"]
        _ = try AutoencoderKL(vaeScope)
        #expect(vaeScope.unusedKeys().isEmpty)
        // The text encoder refuses to build when any key under it is left unread.
        let text = try CLIPPromptEncoder(root["cond_stage_model"]["transformer"]["text_model"])
        #expect(text.width == 768 && text.model.layers.count == 12)
        #expect(try Engine.schedule(from: root).alphasCumprod == NoiseSchedule.sd1.alphasCumprod)

        // Stored numbers come back exactly: element i of a weight is pattern[i mod 32 Ki].
        for key in ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                    "first_stage_model.decoder.up.3.block.2.conv2.weight",
                    "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight"] {
            let t = try file.tensor(key)
            for i in [0, 1, 7, 32_767, 32_768, t.count - 1] {
                #expect(t.scalars[i] == Self.widen(pattern[i % pattern.count], bf16: bf16), "\(key)[\(i)]")
            }
        }
        let leftover = root.unusedKeys().filter { !$0.hasPrefix("model_ema.") && $0.contains(".") }
        #expect(leftover.isEmpty, "keys no network read: \(leftover.prefix(5))")
    }
}
