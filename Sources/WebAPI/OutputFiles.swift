import Foundation
import Pipeline

/// What `save_images: true` does in A1111's API: image files in the txt2img outputs folder, and the grid (saved,
/// and returned first) when the job made more than one image.
/// Matches: modules/processing.py process_images_inner (samples_save, grid), modules/images.py save_image,
/// get_next_sequence_number; modules/api/api.py text2imgapi (do_not_save_samples/grid = not save_images)
struct OutputFiles {
    let options: EffectiveOptions
    let logger: (String) -> Void

    /// Whether A1111 makes a grid for `count` images (only when saving, as the API sets do_not_save_grid).
    func wantsGrid(count: Int) -> Bool {
        let unwanted = count < 2 && options.value("grid_only_if_multiple") != .bool(false)
        return (options.bool("return_grid") || options.bool("grid_save")) && !unwanted
    }

    func grid(_ images: [RGBImage], batchSize: Int) -> RGBImage? {
        RGBImage.grid(images, batchSize: batchSize, nRows: Int(options.int("n_rows")),
                      preventEmptySpots: options.bool("grid_prevent_empty_spots"),
                      background: Self.color(options.string("grid_background_color") ?? "#ffffff"))
    }

    /// Writes `png` as the next numbered file: `NNNNN-<seed>.png` for images, `grid-NNNN.png` for grids, under the
    /// option's folder and (save_to_dirs / grid_save_to_dirs with the default `[date]` pattern) a date folder.
    /// Files are always PNG (`samples_format`/`grid_format` jpg or webp are not written by this server).
    func save(_ png: Data, seed: Int64?, grid: Bool) {
        let folderOption = grid ? "outdir_txt2img_grids" : "outdir_txt2img_samples"
        let root = nonEmpty(options.string(grid ? "outdir_grids" : "outdir_samples"))
            ?? options.string(folderOption) ?? "outputs"
        var folder = URL(fileURLWithPath: root)
        if options.bool(grid ? "grid_save_to_dirs" : "save_to_dirs") {
            folder.appendPathComponent(Self.directoryName(options.string("directories_filename_pattern") ?? "[date]"))
        }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let basename = grid ? "grid" : ""
            var n = Self.nextSequenceNumber(in: folder.path, basename: basename)
            let decoration = grid ? "" : seed.map { "-\($0)" } ?? ""
            while true {
                let stem = grid ? "grid-\(String(format: "%04d", n))" : String(format: "%05d", n)
                let file = folder.appendingPathComponent("\(stem)\(decoration).png")
                if !FileManager.default.fileExists(atPath: file.path) {
                    try png.write(to: file, options: .withoutOverwriting)
                    return
                }
                n += 1
            }
        } catch {
            logger("save_images: could not write into \(folder.path): \(error.localizedDescription)")
        }
    }

    /// One more than the largest leading number of the folder's files with `basename-` (or any files).
    static func nextSequenceNumber(in folder: String, basename: String) -> Int {
        let prefix = basename.isEmpty ? "" : basename + "-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var best = -1
        for name in names where name.hasPrefix(prefix) {
            let rest = ((name.dropFirst(prefix.count)) as Substring)
            let stem = (String(rest) as NSString).deletingPathExtension
            if let n = Int(stem.split(separator: "-", omittingEmptySubsequences: false).first ?? "") { best = max(best, n) }
        }
        return best + 1
    }

    /// `[date]` (today, YYYY-MM-DD) is the only pattern token this server fills; other text is kept as written.
    static func directoryName(_ pattern: String) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd"
        f.locale = Locale(identifier: "en_US_POSIX")
        let name = pattern.replacingOccurrences(of: "[date]", with: f.string(from: Date()))
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "..", with: "_")
        return name.isEmpty ? f.string(from: Date()) : name
    }

    /// `#rrggbb` → bytes (white when malformed).
    static func color(_ hex: String) -> (UInt8, UInt8, UInt8) {
        let digits = hex.hasPrefix("#") ? String(hex.dropFirst()) : hex
        guard digits.count == 6, let v = UInt32(digits, radix: 16) else { return (255, 255, 255) }
        return (UInt8(v >> 16), UInt8((v >> 8) & 0xff), UInt8(v & 0xff))
    }
}
