/// Conversions between decoded tensors and 8-bit images.
public enum ImageConversion {
    /// VAE output `[B, 3, H, W]` in [-1, 1] → images, as A1111 does it: clamp((x + 1) / 2, 0, 1) · 255, then
    /// truncation to uint8 (numpy `astype(np.uint8)`, not rounding).
    /// Matches: modules/processing.py process_images_inner (x_sample → uint8)
    public static func images(fromDecoded x: Tensor) -> [RGBImage] {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(c == 3, "images(fromDecoded:) needs 3 channels, got \(x.shape)")
        let plane = h * w
        return (0..<b).map { i in
            var pixels = [UInt8](repeating: 0, count: plane * 3)
            x.withUnsafeBufferPointer { src in
                let base = i * 3 * plane
                for ch in 0..<3 {
                    for p in 0..<plane {
                        let v = min(max((src[base + ch * plane + p] + 1) / 2, 0), 1) * 255
                        pixels[p * 3 + ch] = UInt8(v)
                    }
                }
            }
            return RGBImage(width: w, height: h, pixels: pixels)
        }
    }

    /// Image → `[1, 3, H, W]` in [-1, 1] for VAE encoding: `2 · (pixel / 255) − 1`, as A1111 img2img prepares it.
    public static func tensor(from image: RGBImage) -> Tensor {
        let plane = image.width * image.height
        return Tensor(uninitialized: [1, 3, image.height, image.width]) { out in
            for p in 0..<plane {
                for ch in 0..<3 { out[ch * plane + p] = Float(image.pixels[p * 3 + ch]) / 255 * 2 - 1 }
            }
        }
    }

    /// SD1 latent → RGB linear factors of A1111's "Approx cheap" live preview.
    /// Matches: modules/sd_vae_approx.py cheap_approximation
    static let latentRGBFactors: [[Float]] = [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ]

    /// Cheap preview of latent `index` of `[B, 4, h, w]` at latent resolution.
    public static func cheapPreview(_ latent: Tensor, index: Int = 0) -> RGBImage {
        let (h, w) = (latent.shape[2], latent.shape[3])
        let plane = h * w
        var rgb = [Float](repeating: 0, count: 3 * plane)
        latent.withUnsafeBufferPointer { src in
            let base = index * 4 * plane
            for l in 0..<4 {
                for r in 0..<3 {
                    let f = latentRGBFactors[l][r]
                    for p in 0..<plane { rgb[r * plane + p] += f * src[base + l * plane + p] }
                }
            }
        }
        return images(fromDecoded: Tensor(shape: [1, 3, h, w], scalars: rgb))[0]
    }
}
