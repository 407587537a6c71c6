// The umbrella module: `import Sprout` brings every library layer.
@_exported import SproutTensor

/// Sprout's version (semantic versioning).
public enum SproutVersion {
    public static let string = "0.1.0"
}
