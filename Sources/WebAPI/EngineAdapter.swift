import Pipeline

/// The pipeline's Engine drives txt2img for the API (its `generate` and `unload` already have the shape).
extension Engine: ImageGenerator {
    public func preload(_ info: CheckpointInfo) throws {
        try load(info)
    }
}
