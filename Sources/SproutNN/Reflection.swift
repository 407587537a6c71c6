/// Parameters and sub-layers found by reflection: every stored property (of the class and
/// its superclasses) holding a `Parameter`, an optional one or an array of them, a layer, an
/// optional layer or an array of layers. This is what a layer has by default (as mlx-swift's
/// `Module` does), so a new layer cannot drop a parameter from training and checkpoints by
/// forgetting to list it; layers that list their members to choose names (`running_mean`)
/// or order are checked against it by a test over every layer type.
public enum LayerReflection {
    public static func parameters(of layer: any Layer) -> [(name: String, parameter: Parameter)] {
        var out: [(name: String, parameter: Parameter)] = []
        visit(layer) { name, value in
            if let p = value as? Parameter {
                out.append((name, p))
            } else if let list = value as? [Parameter] {
                out += list.enumerated().map { ("\(name).\($0.offset)", $0.element) }
            }
        }
        return out
    }

    public static func children(of layer: any Layer) -> [(name: String, layer: any Layer)] {
        var out: [(name: String, layer: any Layer)] = []
        visit(layer) { name, value in
            if let l = value as? any Layer {
                out.append((name, l))
            } else if let list = value as? [any Layer] {
                out += list.enumerated().map { ("\(name).\($0.offset)", $0.element) }
            }
        }
        return out
    }

    /// Calls `body` with each stored property's name and value, optionals unwrapped (nil ones
    /// skipped), superclass properties first.
    private static func visit(_ layer: any Layer, _ body: (String, Any) -> Void) {
        var mirrors: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: layer)
        while let m = mirror { mirrors.insert(m, at: 0); mirror = m.superclassMirror }
        for m in mirrors {
            for child in m.children {
                guard let label = child.label else { continue }
                let value = child.value
                let inner = Mirror(reflecting: value)
                if inner.displayStyle == .optional {
                    guard let some = inner.children.first else { continue }
                    body(label, some.value)
                } else {
                    body(label, value)
                }
            }
        }
    }
}
