// The umbrella module: `import Sprout` brings every library layer.
@_exported import SproutTensor
@_exported import SproutNN
@_exported import SproutOptim
@_exported import SproutData
@_exported import SproutTrain

/// Sprout's version (semantic versioning).
public enum SproutVersion {
    public static let string = "0.1.0"
}
