import Foundation

extension RGBImage {
    /// A1111's grid of a job's images: `rows` from `n_rows` (> 0 fixed, 0 = batch size, −1 = round(√n), or with
    /// `preventEmptySpots` the largest divisor of n not above √n), cells the size of the largest image, smaller
    /// images centred, the rest `background`.
    /// Matches: modules/images.py image_grid
    public static func grid(_ images: [RGBImage], batchSize: Int, nRows: Int = -1, preventEmptySpots: Bool = false,
                            background: (UInt8, UInt8, UInt8) = (255, 255, 255)) -> RGBImage? {
        guard !images.isEmpty else { return nil }
        var rows: Int
        if nRows > 0 {
            rows = nRows
        } else if nRows == 0 {
            rows = batchSize
        } else if preventEmptySpots {
            rows = Int(Double(images.count).squareRoot().rounded(.down))
            while rows > 1 && images.count % rows != 0 { rows -= 1 }
        } else {
            rows = Int(Double(images.count).squareRoot().rounded(.toNearestOrEven))
        }
        rows = max(1, min(rows, images.count))
        let cols = (images.count + rows - 1) / rows
        let w = images.map(\.width).max() ?? 0, h = images.map(\.height).max() ?? 0
        var pixels = [UInt8](repeating: 0, count: cols * w * rows * h * 3)
        for i in 0..<(pixels.count / 3) {
            pixels[i * 3] = background.0; pixels[i * 3 + 1] = background.1; pixels[i * 3 + 2] = background.2
        }
        for (i, image) in images.enumerated() {
            let x0 = (i % cols) * w + (w - image.width) / 2, y0 = (i / cols) * h + (h - image.height) / 2
            for y in 0..<image.height {
                let dst = ((y0 + y) * cols * w + x0) * 3, src = y * image.width * 3
                pixels.replaceSubrange(dst..<(dst + image.width * 3), with: image.pixels[src..<(src + image.width * 3)])
            }
        }
        return RGBImage(width: cols * w, height: rows * h, pixels: pixels)
    }
}
