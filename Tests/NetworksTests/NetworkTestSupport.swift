import Foundation
import ModelIO
import Networks
import TestSupport

/// The committed tiny random SD1.5 checkpoint (real key layout, tiny widths) that the parity fixtures were made on.
func tinyCheckpoint() throws -> SafetensorsFile {
    try SafetensorsFile(path: Fixtures.packageRoot
        .appendingPathComponent("Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors").path)
}

/// Keys and shapes of a checkpoint from a manifest (`fixtures/sd15/*manifest.json`), without any weights.
///
/// Tensors handed out are allocated but never written: layers only keep them, and the full-size manifest test
/// reads no value, so the untouched pages of the ~4 GB of "weights" are never made resident.
struct ManifestTensorSource: TensorSource {
    let shapes: [String: [Int]]
    let keys: [String]

    init(_ relative: String, overriding overrides: [String: [Int]] = [:], removing removed: Set<String> = []) throws {
        struct Manifest: Decodable {
            struct Entry: Decodable { let dtype: String; let shape: [Int] }
            let tensors: [String: Entry]
        }
        var shapes = try Fixtures.json(relative, as: Manifest.self).tensors.mapValues(\.shape)
        shapes.merge(overrides) { $1 }
        for key in removed { shapes[key] = nil }
        self.shapes = shapes
        keys = shapes.keys.sorted()
    }

    func shape(of key: String) -> [Int]? { shapes[key] }

    func tensor(_ key: String) throws -> Tensor {
        guard let shape = shapes[key] else { throw TensorError.missingKey(key) }
        return Tensor(uninitialized: shape) { _ in }
    }
}

/// Reads a fixture tensor, naming the file and key when absent.
func fixtureTensor(_ file: SafetensorsFile, _ key: String) throws -> Tensor { try file.tensor(key) }
