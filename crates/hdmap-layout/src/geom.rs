//! Small 2D helpers for polylines.

/// A 2D point.
pub type P2 = [f64; 2];

/// `b − a`.
pub fn sub(a: P2, b: P2) -> P2 {
    [b[0] - a[0], b[1] - a[1]]
}

/// Norm.
pub fn norm(v: P2) -> f64 {
    v[0].hypot(v[1])
}

/// Dot product.
pub fn dot(a: P2, b: P2) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

/// z of the cross product.
pub fn cross(a: P2, b: P2) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}

/// Unit vector (or zero).
pub fn unit(v: P2) -> P2 {
    let n = norm(v);
    if n < 1e-12 { [0.0, 0.0] } else { [v[0] / n, v[1] / n] }
}

/// Length of a polyline.
pub fn length(p: &[P2]) -> f64 {
    p.windows(2).map(|w| norm(sub(w[0], w[1]))).sum()
}

/// Distance from `p` to segment `ab`, and the parameter along it.
pub fn seg_dist(p: P2, a: P2, b: P2) -> (f64, f64) {
    let d = sub(a, b);
    let l2 = dot(d, d).max(1e-18);
    let u = (dot(sub(a, p), d) / l2).clamp(0.0, 1.0);
    (norm(sub([a[0] + d[0] * u, a[1] + d[1] * u], p)), u)
}

/// Distance from `p` to a polyline (infinite without a segment).
pub fn polyline_dist(p: P2, line: &[P2]) -> f64 {
    if line.len() < 2 { f64::INFINITY } else { closest_on(p, line).1 }
}

/// Direction of travel along a polyline's point order at its start (`at_start`) or end,
/// measured over its first or last `over_m` metres (a short end segment is noisy).
pub fn end_heading(line: &[P2], at_start: bool, over_m: f64) -> P2 {
    let pts: Vec<P2> = if at_start { line.to_vec() } else { line.iter().rev().copied().collect() };
    let far = pts.iter().find(|q| norm(sub(**q, pts[0])) >= over_m).unwrap_or(&pts[pts.len() - 1]);
    if at_start { unit(sub(pts[0], *far)) } else { unit(sub(*far, pts[0])) }
}

/// The point of a polyline closest to `p`, and its distance.
pub fn closest_on(p: P2, line: &[P2]) -> (P2, f64) {
    line.windows(2).fold((line[0], norm(sub(line[0], p))), |best, w| {
        let (d, u) = seg_dist(p, w[0], w[1]);
        if d < best.1 {
            ([w[0][0] + (w[1][0] - w[0][0]) * u, w[0][1] + (w[1][1] - w[0][1]) * u], d)
        } else {
            best
        }
    })
}

/// Points of a polyline every `step` metres (ends included).
pub fn resample(line: &[P2], step: f64) -> Vec<P2> {
    let mut out = vec![line[0]];
    let mut carry = 0.0;
    for w in line.windows(2) {
        let seg = norm(sub(w[0], w[1]));
        if seg < 1e-12 {
            continue;
        }
        let mut u = step - carry;
        while u <= seg {
            let t = u / seg;
            out.push([w[0][0] + (w[1][0] - w[0][0]) * t, w[0][1] + (w[1][1] - w[0][1]) * t]);
            u += step;
        }
        carry = seg - (u - step);
    }
    if let Some(last) = line.last()
        && out.last().is_some_and(|p| norm(sub(*p, *last)) > 1e-6)
    {
        out.push(*last);
    }
    out
}

/// Douglas–Peucker simplification through `geo`.
pub fn simplify(line: &[P2], tol: f64) -> Vec<P2> {
    use geo::Simplify;
    let ls = geo::LineString::from(line.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
    ls.simplify(tol).0.iter().map(|c| [c.x, c.y]).collect()
}

/// Point-in-polygon (even-odd).
pub fn in_polygon(p: P2, ring: &[P2]) -> bool {
    let mut inside = false;
    let n = ring.len();
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Distance from `p` to a polygon's outline.
pub fn polygon_edge_dist(p: P2, ring: &[P2]) -> f64 {
    (0..ring.len()).map(|k| seg_dist(p, ring[k], ring[(k + 1) % ring.len()]).0).fold(f64::INFINITY, f64::min)
}

/// Distance from `p` to a polygon: 0 inside, else to its outline.
pub fn polygon_dist(p: P2, ring: &[P2]) -> f64 {
    if in_polygon(p, ring) { 0.0 } else { polygon_edge_dist(p, ring) }
}

/// Do segments ab and cd intersect?
pub fn segments_cross(a: P2, b: P2, c: P2, d: P2) -> bool {
    let o = |p: P2, q: P2, r: P2| cross(sub(p, q), sub(p, r));
    let (d1, d2, d3, d4) = (o(c, d, a), o(c, d, b), o(a, b, c), o(a, b, d));
    (d1 > 0.0) != (d2 > 0.0) && (d3 > 0.0) != (d4 > 0.0)
}

/// Mean of a polygon's vertices (enough to place a small convex-ish mark).
pub fn polygon_centroid(ring: &[P2]) -> P2 {
    let n = ring.len().max(1) as f64;
    [ring.iter().map(|p| p[0]).sum::<f64>() / n, ring.iter().map(|p| p[1]).sum::<f64>() / n]
}
