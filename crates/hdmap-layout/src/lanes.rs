//! Lanes from lane boundaries: adjacent parallel boundaries a lane width apart bound a lane;
//! the travel direction follows the yellow centre line (traffic keeps right); successors
//! continue lanes across line-type changes and, where the arrows allow, through the junction
//! (a lane without a visible arrow goes straight, and turns from the outermost lane);
//! neighbours share a boundary.

use hdmap_core::{ArrowKind, LineType, MarkingColor};

use crate::config::LayoutConfig;
use crate::geom::{P2, cross, dot, length, norm, polyline_dist, resample, sub, unit};
use crate::lines::FoundBoundary;
use crate::marks::{FoundArrow, FoundStopLine};

/// A lane found from its boundaries (indices into the boundary list, or connectors).
#[derive(Debug, Clone)]
pub struct FoundLane {
    /// Left boundary index and whether its points run against travel.
    pub left: (usize, bool),
    /// Right boundary index and whether its points run against travel.
    pub right: (usize, bool),
    /// Centre line in the direction of travel.
    pub center: Vec<P2>,
    /// Successor lanes (indices into the lane list).
    pub successors: Vec<usize>,
    /// Left neighbour (same direction).
    pub left_neighbour: Option<usize>,
    /// Right neighbour.
    pub right_neighbour: Option<usize>,
    /// Stop line at the end (index).
    pub stop_line: Option<usize>,
    /// Inside the junction (connector with virtual boundaries).
    pub in_intersection: bool,
}

/// Lanes, plus the virtual boundaries created for junction connectors (appended to the
/// boundary list by the caller).
pub struct LaneGraph {
    /// Lanes.
    pub lanes: Vec<FoundLane>,
    /// Virtual boundaries of connectors.
    pub virtual_boundaries: Vec<FoundBoundary>,
}

fn direction_at(line: &[P2], p: P2) -> P2 {
    let mut best = (f64::INFINITY, [1.0, 0.0]);
    for w in line.windows(2) {
        let (d, _) = crate::geom::seg_dist(p, w[0], w[1]);
        if d < best.0 {
            best = (d, unit(sub(w[0], w[1])));
        }
    }
    best.1
}

/// Heading of a lane at its end (or, `at_start`, into its start) over its last 10 m: a
/// connector across a 50 m junction magnifies a degree to almost a metre.
fn heading(line: &[P2], at_start: bool) -> P2 {
    crate::geom::end_heading(line, at_start, 10.0)
}

/// A point midway between a boundary and the next one to its right, a lane width away.
#[derive(Debug, Clone, Copy)]
struct CentreSample {
    c: P2,
    /// Unit direction, canonical (x > 0, or x = 0 and y > 0).
    d: P2,
    /// Boundary on the left / right of `d`.
    left: usize,
    right: usize,
}

/// Centre samples between every boundary and its right-hand neighbour, from both boundaries'
/// points (so a lane is found even where one side is broken into several pieces).
fn centre_samples(bounds: &[FoundBoundary], cfg: &LayoutConfig) -> Vec<CentreSample> {
    let [wmin, wmax] = cfg.lane_width_m;
    let samples: Vec<Vec<P2>> = bounds.iter().map(|b| resample(&b.points, 1.0)).collect();
    let mut grid: std::collections::HashMap<(i64, i64), Vec<(usize, P2)>> = Default::default();
    let key = |p: P2| ((p[0] / 5.0).floor() as i64, (p[1] / 5.0).floor() as i64);
    for (bj, t) in samples.iter().enumerate() {
        for q in t {
            grid.entry(key(*q)).or_default().push((bj, *q));
        }
    }
    let mut out = Vec::new();
    for (bi, s) in samples.iter().enumerate() {
        for (k, p) in s.iter().enumerate() {
            let d = unit(sub(s[k.saturating_sub(1)], s[(k + 1).min(s.len() - 1)]));
            if norm(d) < 0.5 {
                continue;
            }
            for side in [1.0, -1.0] {
                let right = [side * d[1], -side * d[0]];
                let mut best: Option<(f64, usize, P2)> = None;
                let (kx, ky) = key(*p);
                for gx in kx - 1..=kx + 1 {
                    for gy in ky - 1..=ky + 1 {
                        for &(bj, q) in grid.get(&(gx, gy)).map(|v| v.as_slice()).unwrap_or(&[]) {
                            if bj == bi {
                                continue;
                            }
                            let v = sub(*p, q);
                            let lat = dot(v, right);
                            let lon = dot(v, d).abs();
                            if lat > wmin && lat < wmax && lon < 0.6 && best.is_none_or(|b| lat < b.0) {
                                best = Some((lat, bj, q));
                            }
                        }
                    }
                }
                let Some((_, bj, q)) = best else { continue };
                if dot(direction_at(&bounds[bj].points, q), d).abs() < 0.95 {
                    continue;
                }
                let c = [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0];
                let (l, r) = if side > 0.0 { (bi, bj) } else { (bj, bi) };
                let canonical = d[0] > 1e-9 || (d[0].abs() <= 1e-9 && d[1] > 0.0);
                out.push(if canonical {
                    CentreSample { c, d, left: l, right: r }
                } else {
                    CentreSample { c, d: [-d[0], -d[1]], left: r, right: l }
                });
            }
        }
    }
    out
}

/// Groups centre samples into lanes: samples within 0.6 m across and 3 m along each other,
/// parallel, are one lane. Each group comes back ordered along its direction, as bins every
/// 1 m holding the averaged centre and the boundary pair seen most there.
fn cluster_lanes(cs: &[CentreSample]) -> Vec<Vec<(P2, P2, usize, usize)>> {
    let n = cs.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], i: usize) -> usize {
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
    let mut grid: std::collections::HashMap<(i64, i64), Vec<usize>> = Default::default();
    let key = |p: P2| ((p[0] / 2.0).floor() as i64, (p[1] / 2.0).floor() as i64);
    for (i, s) in cs.iter().enumerate() {
        grid.entry(key(s.c)).or_default().push(i);
    }
    for i in 0..n {
        let (kx, ky) = key(cs[i].c);
        for gx in kx - 1..=kx + 1 {
            for gy in ky - 1..=ky + 1 {
                for &j in grid.get(&(gx, gy)).map(|v| v.as_slice()).unwrap_or(&[]) {
                    if j <= i {
                        continue;
                    }
                    let v = sub(cs[j].c, cs[i].c);
                    if dot(cs[i].d, cs[j].d).abs() > 0.95
                        && dot(v, cs[i].d).abs() < 3.0
                        && cross(cs[i].d, v).abs() < 0.6
                    {
                        let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                        parent[a] = b;
                    }
                }
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut out = Vec::new();
    for members in groups.values() {
        if members.len() < 8 {
            continue;
        }
        // Orient every sample like the first (a direction near the canonical flip may come
        // either way), order along the mean direction, bin every metre.
        let d0 = cs[members[0]].d;
        let oriented: Vec<CentreSample> = members
            .iter()
            .map(|&i| {
                let s = cs[i];
                if dot(s.d, d0) >= 0.0 {
                    s
                } else {
                    CentreSample { c: s.c, d: [-s.d[0], -s.d[1]], left: s.right, right: s.left }
                }
            })
            .collect();
        let md = unit(oriented.iter().fold([0.0, 0.0], |a, s| [a[0] + s.d[0], a[1] + s.d[1]]));
        let mut order: Vec<usize> = (0..oriented.len()).collect();
        order.sort_by(|&a, &b| dot(oriented[a].c, md).total_cmp(&dot(oriented[b].c, md)));
        type Bin = (P2, P2, Vec<(usize, usize)>, usize);
        let mut bins: Vec<Bin> = Vec::new();
        for &i in &order {
            let s = oriented[i];
            match bins.last_mut() {
                Some(b) if dot(sub([b.0[0] / b.3 as f64, b.0[1] / b.3 as f64], s.c), s.d) < 1.0 => {
                    b.0 = [b.0[0] + s.c[0], b.0[1] + s.c[1]];
                    b.1 = [b.1[0] + s.d[0], b.1[1] + s.d[1]];
                    b.2.push((s.left, s.right));
                    b.3 += 1;
                }
                _ => bins.push((s.c, s.d, vec![(s.left, s.right)], 1)),
            }
        }
        let mut votes: std::collections::HashMap<(usize, usize), usize> = Default::default();
        for b in &bins {
            for &pr in &b.2 {
                *votes.entry(pr).or_default() += 1;
            }
        }
        let lane: Vec<(P2, P2, usize, usize)> = bins
            .iter()
            .map(|b| {
                let pr = *b.2.iter().max_by_key(|pr| (votes[pr], std::cmp::Reverse(**pr))).unwrap_or(&(0, 0));
                ([b.0[0] / b.3 as f64, b.0[1] / b.3 as f64], unit(b.1), pr.0, pr.1)
            })
            .collect();
        out.push(lane);
    }
    out
}

/// Builds the lane graph.
pub fn lanes(
    bounds: &[FoundBoundary],
    stops: &[FoundStopLine],
    arrows: &[FoundArrow],
    cfg: &LayoutConfig,
) -> LaneGraph {
    let yellow: Vec<usize> = (0..bounds.len()).filter(|&i| bounds[i].color == MarkingColor::Yellow).collect();
    let mut lanes: Vec<FoundLane> = Vec::new();
    let cs = centre_samples(bounds, cfg);
    if std::env::var("HDMAP_DEBUG_LANES").is_ok() {
        for c in &cs {
            eprintln!("CS {:.2} {:.2} {:.3} {:.3} {} {}", c.c[0], c.c[1], c.d[0], c.d[1], c.left, c.right);
        }
    }
    for chain in cluster_lanes(&cs) {
        let center: Vec<P2> = chain.iter().map(|b| b.0).collect();
        let mid = center[center.len() / 2];
        let dir_b = chain[chain.len() / 2].1;
        // Traffic keeps right of the yellow centre line: travel along the chain if the nearest
        // yellow line lies to its left.
        let along = yellow
            .iter()
            .map(|&y| (polyline_dist(mid, &bounds[y].points), y))
            .filter(|(d, _)| *d < 40.0)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, y)| cross(dir_b, sub(mid, nearest_point(&bounds[y].points, mid))) > 0.0)
            .or_else(|| {
                // No centre line in sight: follow an arrow inside the lane, if any.
                arrows
                    .iter()
                    .find(|a| polyline_dist(centroid(&a.polygon), &center) < 1.0)
                    .map(|a| dot(a.direction, dir_b) > 0.0)
            })
            .unwrap_or(true);
        // Runs of one boundary pair (short runs fold into the previous one) become lanes,
        // each the successor of the one before.
        let mut runs: Vec<(usize, usize, Vec<P2>)> = Vec::new();
        for b in &chain {
            match runs.last_mut() {
                Some(r) if (r.0, r.1) == (b.2, b.3) => r.2.push(b.0),
                _ => runs.push((b.2, b.3, vec![b.0])),
            }
        }
        let mut merged: Vec<(usize, usize, Vec<P2>)> = Vec::new();
        for r in runs {
            match merged.last_mut() {
                Some(m) if r.2.len() < 4 => m.2.extend(r.2),
                _ => merged.push(r),
            }
        }
        if merged.len() > 1 && merged[0].2.len() < 4 {
            let first = merged.remove(0);
            let mut pts = first.2;
            pts.append(&mut merged[0].2);
            merged[0].2 = pts;
        }
        if !along {
            merged.reverse();
        }
        let first = lanes.len();
        for (k, (l, r, mut c)) in merged.into_iter().enumerate() {
            let (left, right) = if along { (l, r) } else { (r, l) };
            if !along {
                c.reverse();
            }
            if c.len() < 2 {
                continue;
            }
            let travel = unit(sub(c[0], c[c.len() - 1]));
            let fix = |i: usize| {
                let d = direction_at(&bounds[i].points, nearest_point(&bounds[i].points, c[c.len() / 2]));
                (i, dot(d, travel) < 0.0)
            };
            if k > 0 && lanes.len() > first {
                let (prev, next) = (lanes.len() - 1, lanes.len());
                lanes[prev].successors.push(next);
            }
            lanes.push(FoundLane {
                left: fix(left),
                right: fix(right),
                center: c,
                successors: Vec::new(),
                left_neighbour: None,
                right_neighbour: None,
                stop_line: None,
                in_intersection: false,
            });
        }
    }
    // A lane whose lines were hidden just before its stop line (a waiting truck) still ends at
    // the stop line: extend lane ends that head into a stop line within 12 m.
    for l in lanes.iter_mut() {
        let m = l.center.len();
        let (end, dir) = (l.center[m - 1], unit(sub(l.center[m.saturating_sub(3)], l.center[m - 1])));
        for s in stops {
            let (a, b) = (s.points[0], s.points[s.points.len() - 1]);
            let ax = unit(sub(a, b));
            if dot(dir, ax).abs() > 0.2 {
                continue;
            }
            // Ray end + t·dir against the stop line a + u·ax.
            let denom = cross(dir, ax);
            if denom.abs() < 1e-9 {
                continue;
            }
            let w = sub(end, a);
            let t = cross(w, ax) / denom;
            let u = cross(w, dir) / denom;
            if (0.3..12.0).contains(&t) && u > -2.0 && u < norm(sub(a, b)) + 2.0 {
                let hit = [end[0] + dir[0] * t, end[1] + dir[1] * t];
                l.center.push(hit);
                break;
            }
        }
    }
    let n = lanes.len();
    // Successors along the road and neighbours.
    for i in 0..n {
        let a = &lanes[i];
        let (ae, ad) = (
            a.center[a.center.len() - 1],
            unit(sub(a.center[a.center.len().saturating_sub(2)], a.center[a.center.len() - 1])),
        );
        for j in 0..n {
            if i == j {
                continue;
            }
            let b = &lanes[j];
            let (bs, bd) = (b.center[0], unit(sub(b.center[0], b.center[1.min(b.center.len() - 1)])));
            let gap = sub(ae, bs);
            // (A dash gap at a line-type change may leave a few metres without a lane.)
            if norm(gap) < 8.0
                && dot(ad, bd) > 0.95
                && cross(ad, gap).abs() < 0.6
                && dot(gap, ad) > -1.5
                && !lanes[i].successors.contains(&j)
            {
                lanes[i].successors.push(j);
            }
        }
    }
    for i in 0..n {
        for j in 0..n {
            if i != j && lanes[i].right.0 == lanes[j].left.0 {
                let (ci, cj) =
                    (lanes[i].center[lanes[i].center.len() / 2], lanes[j].center[lanes[j].center.len() / 2]);
                let di = unit(sub(lanes[i].center[0], lanes[i].center[lanes[i].center.len() - 1]));
                let dj = unit(sub(lanes[j].center[0], lanes[j].center[lanes[j].center.len() - 1]));
                if dot(di, dj) > 0.9 && norm(sub(ci, cj)) < 60.0 {
                    lanes[i].right_neighbour = Some(j);
                    lanes[j].left_neighbour = Some(i);
                }
            }
        }
    }
    // Stop lines at lane ends.
    for (si, s) in stops.iter().enumerate() {
        for l in lanes.iter_mut() {
            let end = l.center[l.center.len() - 1];
            if polyline_dist(end, &s.points) < 3.0 {
                l.stop_line = Some(si);
            }
        }
    }
    // Movements through junctions, as the arrows allow.
    let mut virtual_boundaries = Vec::new();
    let first_virtual = bounds.len();
    let mut connectors = Vec::new();
    for i in 0..n {
        if lanes[i].stop_line.is_none() {
            continue;
        }
        let a = &lanes[i];
        let (ae, ad) = (a.center[a.center.len() - 1], heading(&a.center, false));
        // The arrows painted on this lane within 40 m of its end (the lane may be split into
        // pieces: walk back through predecessors).
        let mut chain = vec![i];
        let mut back = length(&a.center);
        while back < 40.0 {
            let Some(p) = (0..n)
                .find(|&p| lanes[p].successors.contains(chain.last().unwrap_or(&i)) && !chain.contains(&p))
            else {
                break;
            };
            back += length(&lanes[p].center);
            chain.push(p);
        }
        let kinds: Vec<ArrowKind> = arrows
            .iter()
            .filter(|ar| {
                let c = centroid(&ar.polygon);
                norm(sub(c, ae)) < 40.0 && chain.iter().any(|&k| polyline_dist(c, &lanes[k].center) < 1.2)
            })
            .map(|ar| ar.kind)
            .collect();
        // A lane without a visible arrow goes straight, and turns from the outermost lane on
        // its side (the rule for unmarked lanes; also what a hidden arrow most likely allows).
        let mut allowed: Vec<i32> = Vec::new();
        if kinds.is_empty() {
            allowed.push(0);
            if a.left_neighbour.is_none() {
                allowed.push(1);
            }
            if a.right_neighbour.is_none() {
                allowed.push(-1);
            }
        }
        for kind in kinds {
            let turns: &[i32] = match kind {
                ArrowKind::Straight => &[0],
                ArrowKind::Left => &[1],
                ArrowKind::Right => &[-1],
                ArrowKind::StraightLeft => &[0, 1],
                ArrowKind::StraightRight => &[0, -1],
                ArrowKind::LeftRight => &[1, -1],
                ArrowKind::UTurn => &[],
            };
            for &t in turns {
                if !allowed.contains(&t) {
                    allowed.push(t);
                }
            }
        }
        for &turn in &allowed {
            // Candidate lanes starting beyond the junction, heading the turned direction.
            let mut best: Option<(f64, usize)> = None;
            for (j, b) in lanes.iter().enumerate() {
                if j == i || b.in_intersection {
                    continue;
                }
                let (bs, bd) = (b.center[0], heading(&b.center, true));
                let v = sub(ae, bs);
                let dist = norm(v);
                // Junctions of wide roads span 50–70 m from stop line to exit.
                if !(3.0..80.0).contains(&dist) {
                    continue;
                }
                let angle = cross(ad, bd).atan2(dot(ad, bd));
                let ok = match turn {
                    0 => angle.abs() < 0.35 && cross(ad, v).abs() < 2.0 && dot(ad, v) > 0.0,
                    1 => (angle - std::f64::consts::FRAC_PI_2).abs() < 0.5 && cross(ad, v) > 0.0,
                    _ => (angle + std::f64::consts::FRAC_PI_2).abs() < 0.5 && cross(ad, v) < 0.0,
                };
                if !ok {
                    continue;
                }
                // Straight: the lane straight ahead; turns: the lane nearest the turn's inside
                // for a left turn (the lane nearest the centre line), outermost for right.
                // (Ties between pieces of one lane go to the piece starting nearest.)
                let score = 0.01 * dist
                    + match turn {
                        0 => cross(ad, v).abs(),
                        1 => lateral_from_yellow(bs, &yellow, bounds),
                        _ => -lateral_from_yellow(bs, &yellow, bounds),
                    };
                if best.is_none_or(|b| score < b.0) {
                    best = Some((score, j));
                }
            }
            if let Some((_, j)) = best {
                let b = &lanes[j];
                let (bs, bd) = (b.center[0], heading(&b.center, true));
                let path = bezier(ae, ad, bs, bd);
                let w = 3.2;
                let lb = first_virtual + virtual_boundaries.len();
                virtual_boundaries.push(FoundBoundary {
                    line_type: LineType::Virtual,
                    color: MarkingColor::White,
                    width_m: 0.0,
                    dash: None,
                    points: offset(&path, w / 2.0),
                });
                virtual_boundaries.push(FoundBoundary {
                    line_type: LineType::Virtual,
                    color: MarkingColor::White,
                    width_m: 0.0,
                    dash: None,
                    points: offset(&path, -w / 2.0),
                });
                connectors.push((
                    i,
                    j,
                    FoundLane {
                        left: (lb, false),
                        right: (lb + 1, false),
                        center: path,
                        successors: vec![j],
                        left_neighbour: None,
                        right_neighbour: None,
                        stop_line: None,
                        in_intersection: true,
                    },
                ));
            }
        }
    }
    for (from, _, lane) in connectors {
        let id = lanes.len();
        lanes.push(lane);
        lanes[from].successors.push(id);
    }
    LaneGraph { lanes, virtual_boundaries }
}

fn lateral_from_yellow(p: P2, yellow: &[usize], bounds: &[FoundBoundary]) -> f64 {
    yellow.iter().map(|&y| polyline_dist(p, &bounds[y].points)).fold(f64::INFINITY, f64::min).min(100.0)
}

fn nearest_point(line: &[P2], p: P2) -> P2 {
    let mut best = (f64::INFINITY, line[0]);
    for w in line.windows(2) {
        let (d, u) = crate::geom::seg_dist(p, w[0], w[1]);
        if d < best.0 {
            best = (d, [w[0][0] + (w[1][0] - w[0][0]) * u, w[0][1] + (w[1][1] - w[0][1]) * u]);
        }
    }
    best.1
}

fn centroid(r: &[P2]) -> P2 {
    let n = r.len() as f64;
    [r.iter().map(|p| p[0]).sum::<f64>() / n, r.iter().map(|p| p[1]).sum::<f64>() / n]
}

fn bezier(a: P2, da: P2, b: P2, db: P2) -> Vec<P2> {
    let l = norm(sub(a, b)) / 3.0;
    let (c1, c2) = ([a[0] + da[0] * l, a[1] + da[1] * l], [b[0] - db[0] * l, b[1] - db[1] * l]);
    let n = ((3.0 * l).ceil() as usize).max(4);
    (0..=n)
        .map(|i| {
            let u = i as f64 / n as f64;
            let v = 1.0 - u;
            let w = [v * v * v, 3.0 * v * v * u, 3.0 * v * u * u, u * u * u];
            [
                w[0] * a[0] + w[1] * c1[0] + w[2] * c2[0] + w[3] * b[0],
                w[0] * a[1] + w[1] * c1[1] + w[2] * c2[1] + w[3] * b[1],
            ]
        })
        .collect()
}

fn offset(p: &[P2], d: f64) -> Vec<P2> {
    let n = p.len();
    (0..n)
        .map(|i| {
            let t = unit(sub(p[i.saturating_sub(1)], p[(i + 1).min(n - 1)]));
            [p[i][0] - t[1] * d, p[i][1] + t[0] * d]
        })
        .collect()
}

/// Total centre-line length of non-junction lanes, m (for reports).
pub fn lane_length(g: &LaneGraph) -> f64 {
    g.lanes.iter().filter(|l| !l.in_intersection).map(|l| length(&l.center)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boundary(a: P2, b: P2, color: MarkingColor, line_type: LineType) -> FoundBoundary {
        let n = (norm(sub(a, b)) / 5.0).ceil() as usize;
        let points = (0..=n)
            .map(|k| {
                let t = k as f64 / n as f64;
                [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
            })
            .collect();
        FoundBoundary { line_type, color, width_m: 0.15, dash: None, points }
    }

    /// A junction 50 m across of two roads with two lanes each way (3.2 m lanes, a yellow
    /// centre line, arms 100 m long), stop lines on every approach and no arrows.
    fn junction() -> (Vec<FoundBoundary>, Vec<FoundStopLine>) {
        let (j, l) = (25.0, 125.0);
        let mut bounds = Vec::new();
        let mut stops = Vec::new();
        // Each arm in a frame turned by `rot` quarter turns: along +u from the junction.
        for rot in 0..4 {
            let turn = |p: P2| -> P2 {
                let (c, s) = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][rot];
                [c * p[0] - s * p[1], s * p[0] + c * p[1]]
            };
            for (v, color, lt) in [
                (0.0, MarkingColor::Yellow, LineType::DoubleSolid),
                (3.2, MarkingColor::White, LineType::Solid),
                (-3.2, MarkingColor::White, LineType::Solid),
                (6.4, MarkingColor::White, LineType::Solid),
                (-6.4, MarkingColor::White, LineType::Solid),
            ] {
                bounds.push(boundary(turn([j, v]), turn([l, v]), color, lt));
            }
            // Inbound traffic on this arm heads −u and keeps right: it is on the +v side.
            stops.push(FoundStopLine { points: vec![turn([j, 0.0]), turn([j, 6.4])], width_m: 0.45 });
        }
        (bounds, stops)
    }

    #[test]
    fn unmarked_lanes_cross_a_wide_junction_straight_and_turn_from_the_outer_lanes() {
        let (bounds, stops) = junction();
        let g = lanes(&bounds, &stops, &[], &LayoutConfig::default());
        let ending = |p: P2| {
            (0..g.lanes.len()).find(|&i| {
                !g.lanes[i].in_intersection && norm(sub(*g.lanes[i].center.last().unwrap_or(&p), p)) < 1.0
            })
        };
        let starting = |p: P2| {
            (0..g.lanes.len())
                .find(|&i| !g.lanes[i].in_intersection && norm(sub(g.lanes[i].center[0], p)) < 1.0)
        };
        let targets = |i: usize| -> Vec<usize> {
            g.lanes[i]
                .successors
                .iter()
                .filter(|&&c| g.lanes[c].in_intersection)
                .flat_map(|&c| g.lanes[c].successors.clone())
                .collect()
        };
        // Eastbound (arriving from the west arm, on its south side).
        let inner = ending([-25.0, -1.6]).expect("eastbound inner lane");
        let outer = ending([-25.0, -4.8]).expect("eastbound outer lane");
        let mut want_inner =
            vec![starting([25.0, -1.6]).expect("east exit"), starting([1.6, 25.0]).expect("north exit")];
        let mut want_outer =
            vec![starting([25.0, -4.8]).expect("east exit"), starting([-4.8, -25.0]).expect("south exit")];
        let (mut got_inner, mut got_outer) = (targets(inner), targets(outer));
        for v in [&mut want_inner, &mut want_outer, &mut got_inner, &mut got_outer] {
            v.sort();
        }
        assert_eq!(got_inner, want_inner, "inner lane: straight across 50 m and left");
        assert_eq!(got_outer, want_outer, "outer lane: straight across 50 m and right");
    }
}
