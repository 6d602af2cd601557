//! Pieces that are not lane lines: stop lines, crosswalks (groups of parallel stripes) and
//! arrows (recognised against the standard glyphs of `hdmap_core::layout::arrow_glyph`).

use hdmap_core::ArrowKind;

use crate::geom::{P2, in_polygon};
use crate::pieces::Piece;

/// What a piece looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A thin elongated piece of a lane line (a dash or part of a solid line).
    Line,
    /// A wide bar: stop line, crosswalk stripe, or a double line merged into one piece.
    Bar,
    /// A compact mark of arrow size.
    Blob,
    /// Anything else (noise, text, roof texture).
    Other,
}

/// Widest measured stroke that is still a lane line, m. Imagery blur widens the measured
/// stroke by about two pixels: a 0.15 m line measures ~0.3 m at 8 cm GSD, a 0.45 m stop line
/// or stripe ~0.55 m.
pub const LINE_MAX_M: f64 = 0.4;

/// Classifies a piece by size and elongation.
pub fn shape_of(p: &Piece) -> Shape {
    let elong = p.length / p.width.max(1e-3);
    // A rectangle's extent across its axis equals its mean width; an arrow's head makes it
    // about twice the mean width.
    let boxy = p.span < 1.5 * p.width + 0.1;
    if (0.6..=5.0).contains(&p.area)
        && (3.5..=6.8).contains(&p.length)
        && (0.5..=2.4).contains(&p.span)
        && !boxy
    {
        Shape::Blob
    } else if (0.06..=LINE_MAX_M).contains(&p.width) && p.length >= 0.8 && elong >= 4.0 && p.span < 0.7 {
        Shape::Line
    } else if p.length >= 2.0
        && elong >= 4.0
        && p.span < 1.3
        && ((LINE_MAX_M..=0.9).contains(&p.width) || (p.yellow > 0.5 && p.width >= 0.2))
    {
        // (A yellow double line whose two lines touch only in places is narrower on average
        // than a full bar but as wide across as one.)
        Shape::Bar
    } else {
        Shape::Other
    }
}

/// A crosswalk found from its stripes.
#[derive(Debug, Clone)]
pub struct FoundCrosswalk {
    /// Outline (4 corners).
    pub polygon: Vec<P2>,
    /// Median stripe width, m.
    pub stripe_m: f64,
    /// Median gap between stripes, m.
    pub gap_m: f64,
}

/// A stop line.
#[derive(Debug, Clone)]
pub struct FoundStopLine {
    /// End points.
    pub points: Vec<P2>,
    /// Width along travel, m.
    pub width_m: f64,
}

/// An arrow.
#[derive(Debug, Clone)]
pub struct FoundArrow {
    /// Kind.
    pub kind: ArrowKind,
    /// Outline (the glyph placed where it fits best).
    pub polygon: Vec<P2>,
    /// Direction of travel it points to (unit).
    pub direction: P2,
    /// Mask IoU of the fit.
    pub iou: f64,
}

/// Groups parallel neighbouring stripes (≥ 3, 2.5–7 m long, side by side) into crosswalks; the
/// remaining white bars longer than 1 m are stop-line candidates (see [`confirm_stop_lines`]).
/// Also returns which inputs became stripes. `gsd_m` corrects the outline and the stripe width
/// for the mask's blur.
pub fn crosswalks_and_stop_lines_used(
    bars: &[&Piece],
    gsd_m: f64,
) -> (Vec<FoundCrosswalk>, Vec<FoundStopLine>, Vec<bool>) {
    let n = bars.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while p[r] != r {
            r = p[r];
        }
        let mut j = i;
        while p[j] != r {
            let nx = p[j];
            p[j] = r;
            j = nx;
        }
        r
    }
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (bars[i], bars[j]);
            if a.yellow > 0.5 || b.yellow > 0.5 {
                continue;
            }
            let par = (a.axis[0] * b.axis[0] + a.axis[1] * b.axis[1]).abs() > 0.985;
            let d = [b.centroid[0] - a.centroid[0], b.centroid[1] - a.centroid[1]];
            let along = (d[0] * a.axis[0] + d[1] * a.axis[1]).abs();
            let across = (-d[0] * a.axis[1] + d[1] * a.axis[0]).abs();
            if par && along < 1.5 && across > 0.4 && across < 2.8 && (a.length - b.length).abs() < 2.5 {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..n {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut cws = Vec::new();
    let mut stops = Vec::new();
    let mut used = vec![false; n];
    for members in groups.values() {
        if members.len() >= 3 && members.iter().all(|&k| (2.5..=7.5).contains(&bars[k].length)) {
            for &k in members {
                used[k] = true;
            }
            let a = bars[members[0]].axis;
            let all: Vec<P2> = members.iter().flat_map(|&k| bars[k].pts.iter().copied()).collect();
            let c = [
                all.iter().map(|p| p[0]).sum::<f64>() / all.len() as f64,
                all.iter().map(|p| p[1]).sum::<f64>() / all.len() as f64,
            ];
            let (mut ulo, mut uhi, mut vlo, mut vhi) =
                (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
            for p in &all {
                let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
                let u = dx * a[0] + dy * a[1];
                let v = -dx * a[1] + dy * a[0];
                ulo = ulo.min(u);
                uhi = uhi.max(u);
                vlo = vlo.min(v);
                vhi = vhi.max(v);
            }
            let at = |u: f64, v: f64| [c[0] + a[0] * u - a[1] * v, c[1] + a[1] * u + a[0] * v];
            // Blur widens the mask by about a pixel on each side: the paint's edge lies half a
            // pixel inside the outermost pixel centre, and a stripe is two pixels narrower
            // than its mask (area / length).
            let (ulo, uhi, vlo, vhi) =
                (ulo + gsd_m / 2.0, uhi - gsd_m / 2.0, vlo + gsd_m / 2.0, vhi - gsd_m / 2.0);
            let mut widths: Vec<f64> = members.iter().map(|&k| bars[k].width).collect();
            widths.sort_by(f64::total_cmp);
            let stripe = (widths[widths.len() / 2] - 2.0 * gsd_m).max(gsd_m);
            let pitch = (vhi - vlo + stripe) / members.len() as f64;
            // The crossing's outline runs half a gap beyond the outer stripes (the zone the
            // stripes are laid out in).
            let half_gap = ((pitch - stripe) / 2.0).max(0.0);
            let (vlo, vhi) = (vlo - half_gap, vhi + half_gap);
            cws.push(FoundCrosswalk {
                polygon: vec![at(ulo, vlo), at(uhi, vlo), at(uhi, vhi), at(ulo, vhi)],
                stripe_m: stripe,
                gap_m: (pitch - stripe).max(0.0),
            });
        } else {
            for &k in members {
                let b = bars[k];
                if b.yellow > 0.5 || b.width < LINE_MAX_M || b.length < 1.0 {
                    continue;
                }
                let h = b.length / 2.0;
                stops.push(FoundStopLine {
                    points: vec![
                        [b.centroid[0] - b.axis[0] * h, b.centroid[1] - b.axis[1] * h],
                        [b.centroid[0] + b.axis[0] * h, b.centroid[1] + b.axis[1] * h],
                    ],
                    width_m: b.width,
                });
            }
        }
    }
    (cws, stops, used)
}

/// A crossing runs across the whole carriageway, from edge line to edge line, while its
/// stripes stop short of them by up to a stripe pitch. Each end of the outline across the road
/// is moved out to the lane line running along the crossing's stripes (within 8 m before or
/// after it, parallel within 10°) that lies beyond the outermost stripe by at most one pitch;
/// an end without such a line keeps its half-gap margin.
pub fn snap_crosswalk_to_edge_lines(cw: &mut FoundCrosswalk, lines: &[&[P2]]) {
    let [p0, p1, _p2, p3] = match cw.polygon.as_slice() {
        [a, b, c, d] => [*a, *b, *c, *d],
        _ => return,
    };
    // The outline is at(ulo, vlo), at(uhi, vlo), at(uhi, vhi), at(ulo, vhi).
    let (ua, va) = (crate::geom::unit(crate::geom::sub(p0, p1)), crate::geom::unit(crate::geom::sub(p0, p3)));
    let u_len = crate::geom::norm(crate::geom::sub(p0, p1));
    let v_len = crate::geom::norm(crate::geom::sub(p0, p3));
    let pitch = cw.stripe_m + cw.gap_m;
    let margin = cw.gap_m / 2.0;
    let (mut best_lo, mut best_hi): (Option<f64>, Option<f64>) = (None, None);
    for line in lines {
        let uv: Vec<(f64, f64)> = line
            .iter()
            .map(|q| {
                let r = crate::geom::sub(p0, *q);
                (crate::geom::dot(r, ua), crate::geom::dot(r, va))
            })
            .collect();
        // An edge line runs on past the crossing (a stray stripe fragment does not).
        if !uv.iter().any(|&(u, _)| u < -1.0 || u > u_len + 1.0) {
            continue;
        }
        for (k, s) in line.windows(2).enumerate() {
            let d = crate::geom::unit(crate::geom::sub(s[0], s[1]));
            if crate::geom::dot(d, ua).abs() < 0.985 {
                continue;
            }
            // The segment's part within 8 m before or after the crossing, at its two ends.
            let ((ua0, va0), (ua1, va1)) = (uv[k], uv[k + 1]);
            let (lo, hi) = (-8.0, u_len + 8.0);
            let at_u = |u: f64| {
                if (ua1 - ua0).abs() < 1e-9 { va0 } else { va0 + (va1 - va0) * (u - ua0) / (ua1 - ua0) }
            };
            let (s0, s1) = (ua0.min(ua1).max(lo), ua0.max(ua1).min(hi));
            if s0 > s1 {
                continue;
            }
            for v in [at_u(s0), at_u(s1)] {
                // Beyond the outermost stripe (the outline sits `margin` outside it), the
                // farthest within a pitch.
                let out_lo = margin - v;
                let out_hi = v - (v_len - margin);
                if (-0.05..=pitch).contains(&out_lo) && best_lo.is_none_or(|b| v < b) {
                    best_lo = Some(v);
                }
                if (-0.05..=pitch).contains(&out_hi) && best_hi.is_none_or(|b| v > b) {
                    best_hi = Some(v);
                }
            }
        }
    }
    let (vlo, vhi) = (best_lo.unwrap_or(0.0), best_hi.unwrap_or(v_len));
    let at = |u: f64, v: f64| [p0[0] + ua[0] * u + va[0] * v, p0[1] + ua[1] * u + va[1] * v];
    cw.polygon = vec![at(0.0, vlo), at(u_len, vlo), at(u_len, vhi), at(0.0, vhi)];
}

/// The arrow kinds recognised (their glyphs: [`hdmap_core::layout::arrow_glyph`]).
pub const ARROW_KINDS: [ArrowKind; 5] = [
    ArrowKind::Straight,
    ArrowKind::Left,
    ArrowKind::Right,
    ArrowKind::StraightLeft,
    ArrowKind::StraightRight,
];

/// Recognises an arrow: the glyph (kind and heading, searched over all headings: a turn
/// arrow's principal axis is not its direction) whose mask overlaps the piece's pixels best,
/// centroids aligned; `None` below IoU 0.6, or 0.7 for a straight arrow (a bare shaft and head
/// is the plainest glyph: a lane line's end with a blob on it fits it at 0.6–0.68, the
/// straight arrows of the simulated city at 0.72 and more).
pub fn recognise_arrow(p: &Piece, gsd: f64) -> Option<FoundArrow> {
    let cell = gsd.max(0.05);
    let c = p.centroid;
    let key = |u: f64, v: f64| ((u / cell).floor() as i64, (v / cell).floor() as i64);
    // The piece's cells on a grid padded by the glyph's reach (5.2 m from its centroid plus
    // the shift), and a stamp per cell to count each placed glyph cell once.
    let piece_keys: Vec<(i64, i64)> = p.pts.iter().map(|q| key(q[0] - c[0], q[1] - c[1])).collect();
    let pad = (6.0 / cell).ceil() as i64;
    let (i0, j0) = piece_keys.iter().fold((i64::MAX, i64::MAX), |m, k| (m.0.min(k.0), m.1.min(k.1)));
    let (i1, j1) = piece_keys.iter().fold((i64::MIN, i64::MIN), |m, k| (m.0.max(k.0), m.1.max(k.1)));
    let (i0, j0, gw, gh) = (
        i0.min(0) - pad,
        j0.min(0) - pad,
        i1.max(0) - i0.min(0) + 2 * pad + 1,
        j1.max(0) - j0.min(0) + 2 * pad + 1,
    );
    let index = |k: (i64, i64)| {
        let (i, j) = (k.0 - i0, k.1 - j0);
        (i >= 0 && j >= 0 && i < gw && j < gh).then(|| (j * gw + i) as usize)
    };
    let mut in_piece = vec![false; (gw * gh) as usize];
    let mut n_piece = 0usize;
    for k in &piece_keys {
        if let Some(ix) = index(*k)
            && !in_piece[ix]
        {
            in_piece[ix] = true;
            n_piece += 1;
        }
    }
    let stamp = std::cell::RefCell::new((vec![0u32; (gw * gh) as usize], 0u32));
    let iou_shifted = |cells: &[P2], dir: P2, shift: P2| {
        let mut st = stamp.borrow_mut();
        let (marks, generation) = &mut *st;
        *generation += 1;
        let (mut placed, mut inter) = (0usize, 0usize);
        for q in cells {
            let k = key(dir[0] * q[0] - dir[1] * q[1] + shift[0], dir[1] * q[0] + dir[0] * q[1] + shift[1]);
            match index(k) {
                Some(ix) if marks[ix] != *generation => {
                    marks[ix] = *generation;
                    placed += 1;
                    inter += usize::from(in_piece[ix]);
                }
                Some(_) => {}
                // (Cannot happen with the padding; counted as placed outside the piece.)
                None => placed += 1,
            }
        }
        inter as f64 / ((placed + n_piece) as f64 - inter as f64).max(1.0)
    };
    let iou_at = |cells: &[P2], dir: P2| iou_shifted(cells, dir, [0.0, 0.0]);
    let mut best: Option<FoundArrow> = None;
    for kind in ARROW_KINDS {
        let glyph = hdmap_core::layout::arrow_glyph(kind);
        // Glyph cells (half-cell sampling), centred on the glyph's area centroid.
        let mut cells = Vec::new();
        let step = cell / 2.0;
        let mut u = -0.2;
        while u < 5.2 {
            let mut v = -2.0;
            while v < 2.0 {
                if in_polygon([u, v], &glyph) {
                    cells.push([u, v]);
                }
                v += step;
            }
            u += step;
        }
        if cells.is_empty() {
            continue;
        }
        let n = cells.len() as f64;
        let gc = [cells.iter().map(|q| q[0]).sum::<f64>() / n, cells.iter().map(|q| q[1]).sum::<f64>() / n];
        let cells: Vec<P2> = cells.iter().map(|q| [q[0] - gc[0], q[1] - gc[1]]).collect();
        // Coarse heading search, then refine around the best.
        let dir_of = |deg: f64| [deg.to_radians().cos(), deg.to_radians().sin()];
        let (mut best_deg, mut best_iou) = (0.0, -1.0);
        for k in 0..120 {
            let deg = k as f64 * 3.0;
            let iou = iou_at(&cells, dir_of(deg));
            if iou > best_iou {
                (best_deg, best_iou) = (deg, iou);
            }
        }
        for k in -6..=6 {
            let deg = best_deg + k as f64 * 0.5;
            let iou = iou_at(&cells, dir_of(deg));
            if iou > best_iou {
                (best_deg, best_iou) = (deg, iou);
            }
        }
        if best.as_ref().is_none_or(|b| best_iou > b.iou) {
            let dir = dir_of(best_deg);
            // The piece's centroid is not the glyph's where paint is missing or merged: shift
            // by up to two cells for the best overlap.
            let mut shift = [0.0, 0.0];
            for i in -4..=4 {
                for j in -4..=4 {
                    let s = [i as f64 * cell / 2.0, j as f64 * cell / 2.0];
                    let iou = iou_shifted(&cells, dir, s);
                    if iou > best_iou + 1e-9 {
                        (shift, best_iou) = (s, iou);
                    }
                }
            }
            let polygon = glyph
                .iter()
                .map(|q| {
                    let (u, v) = (q[0] - gc[0], q[1] - gc[1]);
                    [c[0] + dir[0] * u - dir[1] * v + shift[0], c[1] + dir[1] * u + dir[0] * v + shift[1]]
                })
                .collect();
            best = Some(FoundArrow { kind, polygon, direction: dir, iou: best_iou });
        }
    }
    best.filter(|b| b.iou > if b.kind == ArrowKind::Straight { 0.7 } else { 0.6 })
}

/// Area, length and head of an arrow (whatever the shape test says): worth a glyph fit.
pub fn arrow_sized(p: &Piece) -> bool {
    (0.6..=3.0).contains(&p.area)
        && (2.5..=7.0).contains(&p.length)
        && p.span >= 0.5
        && p.span > 1.5 * p.width
}

/// How far short of a stop line a lane line may end and still tell how far the stop line
/// reaches, m.
const SHORT_END_M: f64 = 10.0;

/// An end of a lane boundary: position, direction from the end into the line (unit), yellow.
#[derive(Debug, Clone, Copy)]
pub struct LineEnd {
    /// End point.
    pub at: P2,
    /// Direction from the end into the line.
    pub dir: P2,
    /// Yellow (centre line): a stop line ends there.
    pub yellow: bool,
}

/// Keeps the stop-line candidates that lane lines end at, merges collinear pieces of one stop
/// line (a car may hide part of it) and extends each across the lane lines ending at it (or
/// ending up to [`SHORT_END_M`] short of it on its approach), up to the yellow centre line. A
/// bright bar with no lane line ending at it (a kerb, a roof edge, a pole's lit side) is
/// dropped.
pub fn confirm_stop_lines(cands: &[FoundStopLine], ends: &[LineEnd], lines: &[&[P2]]) -> Vec<FoundStopLine> {
    // Each candidate as (centre, axis, [lo, hi] along the axis, width).
    struct Bar {
        c: P2,
        a: P2,
        lo: f64,
        hi: f64,
        w: f64,
    }
    let mut bars: Vec<Bar> = cands
        .iter()
        .map(|s| {
            let (p, q) = (s.points[0], s.points[s.points.len() - 1]);
            let c = [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0];
            let l = (q[0] - p[0]).hypot(q[1] - p[1]).max(1e-6);
            Bar { c, a: [(q[0] - p[0]) / l, (q[1] - p[1]) / l], lo: -l / 2.0, hi: l / 2.0, w: s.width_m }
        })
        .collect();
    let frame = |b: &Bar, p: P2| {
        let d = [p[0] - b.c[0], p[1] - b.c[1]];
        (d[0] * b.a[0] + d[1] * b.a[1], -d[0] * b.a[1] + d[1] * b.a[0])
    };
    // Ends that meet a bar: within 1.5 m across it, travelling perpendicular to it (within
    // 9°: a lit gap between two shadows is rarely that square to the lanes).
    let meets = |b: &Bar, e: &LineEnd| {
        let (u, v) = frame(b, e.at);
        let perp = (e.dir[0] * b.a[0] + e.dir[1] * b.a[1]).abs() < 0.15;
        (perp && v.abs() < 1.5).then_some(u)
    };
    // Merge collinear bars (same line within 0.5 m, gap ≤ 4 m) before confirming.
    let mut merged = true;
    while merged {
        merged = false;
        'outer: for i in 0..bars.len() {
            for j in i + 1..bars.len() {
                let (bi, bj) = (&bars[i], &bars[j]);
                if (bi.a[0] * bj.a[0] + bi.a[1] * bj.a[1]).abs() < 0.985 {
                    continue;
                }
                let (u0, v0) = frame(bi, bj.c);
                let half = (bj.hi - bj.lo) / 2.0;
                let (lo, hi) = (u0 - half, u0 + half);
                if v0.abs() > 0.5 || lo > bi.hi + 4.0 || hi < bi.lo - 4.0 {
                    continue;
                }
                let (nlo, nhi) = (bi.lo.min(lo), bi.hi.max(hi));
                let w = bi.w.max(bj.w);
                let mid = (nlo + nhi) / 2.0;
                let c = [bi.c[0] + bi.a[0] * mid, bi.c[1] + bi.a[1] * mid];
                let a = bi.a;
                bars[i] = Bar { c, a, lo: nlo - mid, hi: nhi - mid, w };
                bars.remove(j);
                merged = true;
                break 'outer;
            }
        }
    }
    let mut out = Vec::new();
    for b in &bars {
        // Lane lines end at a stop line; one running through the bar means it is something
        // else (the lit gap between two shadows across the road).
        let (p, q) = (
            [b.c[0] + b.a[0] * b.lo, b.c[1] + b.a[1] * b.lo],
            [b.c[0] + b.a[0] * b.hi, b.c[1] + b.a[1] * b.hi],
        );
        if lines.iter().any(|l| l.windows(2).any(|s| crate::geom::segments_cross(p, q, s[0], s[1]))) {
            continue;
        }
        // The same holds for a line broken at the bar (the bar stopped it from being bridged):
        // lines end at a stop line from one side only.
        let sides = ends.iter().filter_map(|e| {
            let (u, v) = frame(b, e.at);
            let perp = (e.dir[0] * b.a[0] + e.dir[1] * b.a[1]).abs() < 0.15;
            (perp && v.abs() < 1.5 && u > b.lo + 0.2 && u < b.hi - 0.2).then_some(v > 0.0)
        });
        let (mut pos, mut neg) = (false, false);
        for s in sides {
            if s { pos = true } else { neg = true }
        }
        if pos && neg {
            continue;
        }
        let mut us: Vec<(f64, bool)> =
            ends.iter().filter_map(|e| meets(b, e).map(|u| (u, e.yellow))).collect();
        if !us.iter().any(|&(u, _)| u > b.lo - 1.0 && u < b.hi + 1.0) {
            continue;
        }
        // Lines may also stop short of the stop line, on the approach side, where the mask
        // lost their last metres (a shadow's edge, a car): their ends still tell how far the
        // stop line reaches (only for extending it, not for confirming it).
        if pos != neg {
            us.extend(ends.iter().filter_map(|e| {
                let (u, v) = frame(b, e.at);
                let perp = (e.dir[0] * b.a[0] + e.dir[1] * b.a[1]).abs() < 0.15;
                // Leaving the line past its end moves toward the bar.
                let toward = (-e.dir[0] * b.a[1] + e.dir[1] * b.a[0]) * v > 0.0;
                (perp && toward && (v > 0.0) == pos && (1.5..=SHORT_END_M).contains(&v.abs()))
                    .then_some((u, e.yellow))
            }));
        }
        us.sort_by(|x, y| x.0.total_cmp(&y.0));
        let (mut lo, mut hi) = (b.lo, b.hi);
        // A yellow end at or inside the bar bounds it on that side.
        let (lo0, hi0) = (lo, hi);
        for &(u, _) in us.iter().filter(|&&(u, y)| y && u >= lo0 - 1.0 && u <= hi0 + 1.0) {
            if u - lo < hi - u {
                lo = lo.max(u);
            } else {
                hi = hi.min(u);
            }
        }
        let yellow_lo = us.iter().any(|&(u, y)| y && (u - lo).abs() < 1.0);
        let yellow_hi = us.iter().any(|&(u, y)| y && (u - hi).abs() < 1.0);
        if !yellow_hi {
            let hi0 = hi;
            for &(u, y) in us.iter().filter(|&&(u, _)| u > hi0) {
                if u - hi > 4.5 {
                    break;
                }
                hi = u;
                if y {
                    break;
                }
            }
        }
        if !yellow_lo {
            let lo0 = lo;
            for &(u, y) in us.iter().rev().filter(|&&(u, _)| u < lo0) {
                if lo - u > 4.5 {
                    break;
                }
                lo = u;
                if y {
                    break;
                }
            }
        }
        if hi - lo < 2.0 {
            continue;
        }
        out.push(FoundStopLine {
            points: vec![
                [b.c[0] + b.a[0] * lo, b.c[1] + b.a[1] * lo],
                [b.c[0] + b.a[0] * hi, b.c[1] + b.a[1] * hi],
            ],
            width_m: b.w,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GSD: f64 = 0.08;

    /// Pixel centres of a rectangle of paint whose edges lie on pixel edges (`x0..x1`,
    /// `y0..y1` in pixels) as a blurred mask shows it: one pixel wider on every side.
    fn blurred_rect(x0: i64, x1: i64, y0: i64, y1: i64) -> Piece {
        let pts = (x0 - 1..x1 + 1)
            .flat_map(|x| (y0 - 1..y1 + 1).map(move |y| [(x as f64 + 0.5) * GSD, (y as f64 + 0.5) * GSD]))
            .collect();
        Piece::new(pts, 0.0, GSD)
    }

    /// A crossing of 13 stripes 0.48 m wide at a 0.96 m pitch (6 and 12 pixels), 5.04 m long
    /// (y from 10 m), centred across a 13 m carriageway whose edge lines are at x = ±6.5 m:
    /// the outer stripes' outer edges are at ±6.0 m.
    fn crossing() -> Vec<Piece> {
        (0..13).map(|k| blurred_rect(-75 + 12 * k, -69 + 12 * k, 125, 188)).collect()
    }

    #[test]
    fn a_crossing_spans_the_carriageway_between_its_edge_lines() {
        let (stripes, half) = (crossing(), 6.5);
        let refs: Vec<&Piece> = stripes.iter().collect();
        let (mut cws, stops, used) = crosswalks_and_stop_lines_used(&refs, GSD);
        assert_eq!((cws.len(), stops.len()), (1, 0));
        assert!(used.iter().all(|u| *u));
        let cw = &mut cws[0];
        // Stripe width and gap from the blurred mask.
        assert!((cw.stripe_m - 0.48).abs() < 0.01 && (cw.gap_m - 0.48).abs() < 0.01, "{cw:?}");
        let extent = |cw: &FoundCrosswalk, k: usize| {
            let v: Vec<f64> = cw.polygon.iter().map(|p| p[k]).collect();
            (
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        };
        // Without edge lines: the stripes' zone, half a gap beyond the outer stripes.
        let (x_lo, x_hi) = extent(cw, 0);
        assert!((x_hi - 6.24).abs() < 0.01 && (x_lo + 6.24).abs() < 0.01, "{x_lo} {x_hi}");
        // Along the stripes: their painted ends, not the blurred ones.
        let (y_lo, y_hi) = extent(cw, 1);
        assert!((y_lo - 10.0).abs() < 0.01 && (y_hi - 15.04).abs() < 0.01, "{y_lo} {y_hi}");
        // Edge lines along the road (running on past the crossing), a lane line inside, and a
        // line two pitches beyond the west edge (a parking lane's): the outline goes to the edge
        // lines.
        let west: Vec<P2> = vec![[-half, -20.0], [-half, 40.0]];
        let east: Vec<P2> = vec![[half, 0.0], [half, 30.0]];
        let inner: Vec<P2> = vec![[-3.2, 0.0], [-3.2, 9.0]];
        let parking: Vec<P2> = vec![[-half - 1.8, 0.0], [-half - 1.8, 30.0]];
        let mut snapped = cw.clone();
        snap_crosswalk_to_edge_lines(&mut snapped, &[&west, &east, &inner, &parking]);
        let (x_lo, x_hi) = extent(&snapped, 0);
        assert!((x_lo + half).abs() < 0.01 && (x_hi - half).abs() < 0.01, "{x_lo} {x_hi}");
        assert_eq!(extent(&snapped, 1), extent(cw, 1), "the stripes' ends are kept");
        // A stripe-long line fragment beside the crossing is no edge line.
        let fragment: Vec<P2> = vec![[-half, 10.2], [-half, 14.8]];
        let mut kept = cw.clone();
        snap_crosswalk_to_edge_lines(&mut kept, &[&fragment]);
        assert_eq!(extent(&kept, 0), extent(cw, 0));
    }

    /// The end at (`x_end`, `y`) of a lane line coming from −x (its direction points back into
    /// the line).
    fn end_at(x_end: f64, y: f64, yellow: bool) -> LineEnd {
        LineEnd { at: [x_end, y], dir: [-1.0, 0.0], yellow }
    }

    #[test]
    fn a_stop_line_reaches_a_lane_line_that_stops_short_of_it_on_its_approach() {
        // Three lanes approach a stop line at x = 0 from −x: the yellow centre line at y = 10.5
        // and lane lines at y = 7 and 3.5 end on it; the edge line at y = 0 lost its last 9 m
        // (a shadow's edge). The stop line's bar was found only from y = 10.5 to 3.3.
        let cands = [FoundStopLine { points: vec![[0.0, 10.5], [0.0, 3.3]], width_m: 0.45 }];
        let mut ends = vec![end_at(-0.2, 10.5, true), end_at(-0.2, 7.0, false), end_at(-0.2, 3.5, false)];
        let reach = |ends: &[LineEnd]| {
            let s = confirm_stop_lines(&cands, ends, &[]);
            assert_eq!(s.len(), 1, "{s:?}");
            let ys = [s[0].points[0][1], s[0].points[1][1]];
            (ys[0].min(ys[1]), ys[0].max(ys[1]))
        };
        assert!((reach(&ends).0 - 3.3).abs() < 0.25, "{:?}", reach(&ends));
        ends.push(end_at(-9.0, 0.0, false));
        let (lo, hi) = reach(&ends);
        assert!(lo.abs() < 0.05 && (hi - 10.5).abs() < 0.05, "to the edge line: {lo} {hi}");
        // A line that ends short on the far side (beyond the stop line, in the junction) says
        // nothing about it; nor does one that ends farther than 10 m short.
        let far_side = [&ends[..3], &[LineEnd { at: [9.0, 0.0], dir: [1.0, 0.0], yellow: false }]].concat();
        assert!((reach(&far_side).0 - 3.3).abs() < 0.25);
        let too_far = [&ends[..3], &[end_at(-12.0, 0.0, false)]].concat();
        assert!((reach(&too_far).0 - 3.3).abs() < 0.25);
    }
}

#[cfg(test)]
mod arrow_tests {
    use super::*;

    const GSD: f64 = 0.08;

    /// Pixel centres inside a glyph painted heading `deg` (with the mask's one-pixel blur).
    fn painted(kind: ArrowKind, deg: f64) -> Piece {
        let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
        let ring: Vec<P2> = hdmap_core::layout::arrow_glyph(kind)
            .iter()
            .map(|p| [10.0 + c * p[0] - s * p[1], 10.0 + s * p[0] + c * p[1]])
            .collect();
        let inside = |x: f64, y: f64| {
            (-1..=1).any(|dx| {
                (-1..=1).any(|dy| in_polygon([x + dx as f64 * 0.5 * GSD, y + dy as f64 * 0.5 * GSD], &ring))
            })
        };
        let pts = (0..250 * 250)
            .map(|i| [((i % 250) as f64 + 0.5) * GSD, ((i / 250) as f64 + 0.5) * GSD])
            .filter(|p| inside(p[0], p[1]))
            .collect();
        Piece::new(pts, 0.0, GSD)
    }

    #[test]
    fn painted_arrows_of_every_kind_pass_their_overlap_bar() {
        // The straight arrow's bar is higher than the others' (0.7 against 0.6): a cleanly
        // painted one, at any heading, still clears it with its own kind.
        for kind in [ArrowKind::Straight, ArrowKind::Left, ArrowKind::Right, ArrowKind::StraightRight] {
            for deg in [0.0, 33.0, 90.0, 217.0] {
                let a = recognise_arrow(&painted(kind, deg), GSD);
                let a = a.unwrap_or_else(|| panic!("{kind:?} at {deg}° not recognised"));
                assert_eq!(a.kind, kind, "at {deg}°: IoU {:.2}", a.iou);
                let heading = a.direction[1].atan2(a.direction[0]).to_degrees();
                let off = (heading - deg + 540.0).rem_euclid(360.0) - 180.0;
                assert!(off.abs() < 5.0, "{kind:?} at {deg}°: heading {heading:.1}°");
            }
        }
    }
}
