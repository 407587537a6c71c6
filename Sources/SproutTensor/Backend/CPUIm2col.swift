import CSproutKernels

/// The portable path: per sample and group, unfold the input into columns
/// [C/G·R·S, OH·OW] and multiply with BLAS.
struct Im2col {
    let n, c, h, w, k, r, s, oh, ow, sh, sw, pt, pl, g: Int
    var cg: Int { c / g }
    var kg: Int { k / g }
    var rows: Int { cg * r * s }
    var cols: Int { oh * ow }

    init(_ p: sprout_conv_problem) {
        (n, c, h, w, k, r, s) = (Int(p.n), Int(p.c), Int(p.h), Int(p.w), Int(p.k), Int(p.r), Int(p.s))
        (oh, ow, sh, sw) = (Int(p.oh), Int(p.ow), Int(p.stride_h), Int(p.stride_w))
        (pt, pl, g) = (Int(p.pad_top), Int(p.pad_left), Int(p.groups))
    }

    /// col[(ci·R + i)·S + j, oy·OW + ox] = x[ci, oy·sh − pt + i, ox·sw − pl + j] (0 outside)
    func unfold(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
        for ci in 0..<cg {
            for i in 0..<r {
                for j in 0..<s {
                    let row = col + ((ci * r + i) * s + j) * cols
                    for oy in 0..<oh {
                        let iy = oy * sh - pt + i
                        let dst = row + oy * ow
                        if iy < 0 || iy >= h { dst.update(repeating: 0, count: ow); continue }
                        let src = x + (ci * h + iy) * w
                        for ox in 0..<ow {
                            let ix = ox * sw - pl + j
                            dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `unfold`: accumulates columns back into the image.
    func fold(_ col: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>) {
        for ci in 0..<cg {
            for i in 0..<r {
                for j in 0..<s {
                    let row = col + ((ci * r + i) * s + j) * cols
                    for oy in 0..<oh {
                        let iy = oy * sh - pt + i
                        if iy < 0 || iy >= h { continue }
                        let dst = x + (ci * h + iy) * w
                        for ox in 0..<ow {
                            let ix = ox * sw - pl + j
                            if ix >= 0 && ix < w { dst[ix] += row[oy * ow + ox] }
                        }
                    }
                }
            }
        }
    }

    func forward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, b: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let col = TensorStorage(count: rows * cols)
        for ni in 0..<n {
            for gi in 0..<g {
                unfold(x + (ni * c + gi * cg) * h * w, col.pointer)
                sgemmBatched(batch: 1, m: kg, n: cols, k: rows,
                             a: wt + gi * kg * rows, strideA: 0, transposeA: false,
                             b: col.pointer, strideB: 0, transposeB: false,
                             c: y + (ni * k + gi * kg) * cols)
            }
            if let b {
                for ki in 0..<k {
                    let yk = y + (ni * k + ki) * cols
                    for i in 0..<cols { yk[i] += b[ki] }
                }
            }
        }
    }

    func backwardData(dy: UnsafePointer<Float>, w wt: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let col = TensorStorage(count: rows * cols)
        dx.update(repeating: 0, count: n * c * h * w)
        for ni in 0..<n {
            for gi in 0..<g {
                sgemmBatched(batch: 1, m: rows, n: cols, k: kg,
                             a: wt + gi * kg * rows, strideA: 0, transposeA: true,
                             b: dy + (ni * k + gi * kg) * cols, strideB: 0, transposeB: false,
                             c: col.pointer)
                fold(col.pointer, dx + (ni * c + gi * cg) * h * w)
            }
        }
    }

    func backwardWeights(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?) {
        let col = TensorStorage(count: rows * cols)
        dw.update(repeating: 0, count: k * rows)
        for ni in 0..<n {
            for gi in 0..<g {
                unfold(x + (ni * c + gi * cg) * h * w, col.pointer)
                sgemmBatched(batch: 1, m: kg, n: rows, k: cols,
                             a: dy + (ni * k + gi * kg) * cols, strideA: 0, transposeA: false,
                             b: col.pointer, strideB: 0, transposeB: true,
                             c: dw + gi * kg * rows, accumulate: true)
            }
        }
        if let db {
            for ki in 0..<k {
                var acc: Float = 0
                for ni in 0..<n {
                    let d = dy + (ni * k + ki) * cols
                    for i in 0..<cols { acc += d[i] }
                }
                db[ki] = acc
            }
        }
    }
}

