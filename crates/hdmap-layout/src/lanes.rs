//! Lanes from lane boundaries: adjacent parallel boundaries a lane width apart bound a lane;
//! the travel direction follows the yellow centre line (traffic keeps right); successors
//! continue lanes across line-type changes and, where the arrows allow, through the junction;
//! neighbours share a boundary.

use hdmap_core::{ArrowKind, LineType, MarkingColor};

use crate::config::LayoutConfig;
use crate::geom::{cross, dot, length, norm, polyline_dist, resample, sub, unit, P2};
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

/// Builds the lane graph.
pub fn lanes(bounds: &[FoundBoundary], stops: &[FoundStopLine], arrows: &[FoundArrow], cfg: &LayoutConfig) -> LaneGraph {
    let [wmin, wmax] = cfg.lane_width_m;
    let samples: Vec<Vec<P2>> = bounds.iter().map(|b| resample(&b.points, 1.0)).collect();
    let yellow: Vec<usize> = (0..bounds.len()).filter(|&i| bounds[i].color == MarkingColor::Yellow).collect();
    let mut lanes: Vec<FoundLane> = Vec::new();
    let mut seen_pairs = std::collections::HashSet::new();
    for (bi, s) in samples.iter().enumerate() {
        // For each sample: the nearest boundary to the right, a lane width away, parallel.
        let mut votes: std::collections::BTreeMap<usize, Vec<(P2, P2)>> = Default::default();
        for (k, p) in s.iter().enumerate() {
            let d = unit(sub(s[k.saturating_sub(1)], s[(k + 1).min(s.len() - 1)]));
            let right = [d[1], -d[0]];
            let mut best: Option<(f64, usize, P2)> = None;
            for (bj, t) in samples.iter().enumerate() {
                if bj == bi {
                    continue;
                }
                for q in t {
                    let v = sub(*p, *q);
                    let lat = dot(v, right);
                    let lon = dot(v, d).abs();
                    if lat > wmin && lat < wmax && lon < 0.6 && best.is_none_or(|b| lat < b.0) {
                        best = Some((lat, bj, *q));
                    }
                }
            }
            if let Some((_, bj, q)) = best {
                let dq = direction_at(&bounds[bj].points, q);
                if dot(dq, d).abs() > 0.95 {
                    votes.entry(bj).or_default().push((*p, q));
                }
            }
        }
        for (bj, pairs) in votes {
            if pairs.len() < 5 || !seen_pairs.insert((bi.min(bj), bi.max(bj))) {
                continue;
            }
            let center: Vec<P2> = pairs.iter().map(|(a, b)| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]).collect();
            let dir_b = unit(sub(center[0], center[center.len() - 1]));
            let mid = center[center.len() / 2];
            // Traffic keeps right of the yellow line: travel along B if yellow lies to the left.
            let along = yellow
                .iter()
                .filter(|&&y| y != bi && y != bj)
                .map(|&y| {
                    let d = polyline_dist(mid, &bounds[y].points);
                    (d, y)
                })
                .filter(|(d, _)| *d < 40.0)
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, y)| {
                    let q = nearest_point(&bounds[y].points, mid);
                    cross(dir_b, sub(mid, q)) > 0.0
                })
                .or_else(|| {
                    // No centre line in sight: follow an arrow inside the lane, if any.
                    arrows.iter().find(|a| {
                        let ac = centroid(&a.polygon);
                        polyline_dist(ac, &center) < 1.0
                    }).map(|a| dot(a.direction, dir_b) > 0.0)
                })
                .unwrap_or(true);
            let (mut c, left, right) = if along { (center, (bi, false), (bj, false)) } else { (center, (bj, true), (bi, true)) };
            if !along {
                c.reverse();
            }
            // Point order of each boundary relative to travel.
            let travel = unit(sub(c[0], c[c.len() - 1]));
            let fix = |(i, _): (usize, bool)| {
                let d = direction_at(&bounds[i].points, nearest_point(&bounds[i].points, c[c.len() / 2]));
                (i, dot(d, travel) < 0.0)
            };
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
    let n = lanes.len();
    // Successors along the road and neighbours.
    for i in 0..n {
        let a = &lanes[i];
        let (ae, ad) = (a.center[a.center.len() - 1], unit(sub(a.center[a.center.len().saturating_sub(2)], a.center[a.center.len() - 1])));
        for j in 0..n {
            if i == j {
                continue;
            }
            let b = &lanes[j];
            let (bs, bd) = (b.center[0], unit(sub(b.center[0], b.center[1.min(b.center.len() - 1)])));
            let gap = sub(ae, bs);
            if norm(gap) < 3.0 && dot(ad, bd) > 0.9 && cross(ad, gap).abs() < 1.0 && dot(gap, ad) > -1.5 {
                lanes[i].successors.push(j);
            }
        }
    }
    for i in 0..n {
        for j in 0..n {
            if i != j && lanes[i].right.0 == lanes[j].left.0 {
                let (ci, cj) = (lanes[i].center[lanes[i].center.len() / 2], lanes[j].center[lanes[j].center.len() / 2]);
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
        let (ae, ad) = (a.center[a.center.len() - 1], unit(sub(a.center[a.center.len().saturating_sub(2)], a.center[a.center.len() - 1])));
        let kind = arrows
            .iter()
            .filter(|ar| polyline_dist(centroid(&ar.polygon), &a.center) < 1.2)
            .map(|ar| ar.kind)
            .next()
            .unwrap_or(ArrowKind::Straight);
        let allowed: &[i32] = match kind {
            ArrowKind::Straight => &[0],
            ArrowKind::Left => &[1],
            ArrowKind::Right => &[-1],
            ArrowKind::StraightLeft => &[0, 1],
            ArrowKind::StraightRight => &[0, -1],
            ArrowKind::LeftRight => &[1, -1],
            ArrowKind::UTurn => &[],
        };
        for &turn in allowed {
            // Candidate lanes starting beyond the junction, heading the turned direction.
            let mut best: Option<(f64, usize)> = None;
            for (j, b) in lanes.iter().enumerate() {
                if j == i || b.in_intersection {
                    continue;
                }
                let (bs, bd) = (b.center[0], unit(sub(b.center[0], b.center[1.min(b.center.len() - 1)])));
                let v = sub(ae, bs);
                let dist = norm(v);
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
                let score = match turn {
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
                let bs = b.center[0];
                let bd = unit(sub(b.center[0], b.center[1.min(b.center.len() - 1)]));
                let path = bezier(ae, ad, bs, bd);
                let w = 3.2;
                let lb = first_virtual + virtual_boundaries.len();
                virtual_boundaries.push(FoundBoundary { line_type: LineType::Virtual, color: MarkingColor::White, width_m: 0.0, dash: None, points: offset(&path, w / 2.0) });
                virtual_boundaries.push(FoundBoundary { line_type: LineType::Virtual, color: MarkingColor::White, width_m: 0.0, dash: None, points: offset(&path, -w / 2.0) });
                connectors.push((i, j, FoundLane {
                    left: (lb, false),
                    right: (lb + 1, false),
                    center: path,
                    successors: vec![j],
                    left_neighbour: None,
                    right_neighbour: None,
                    stop_line: None,
                    in_intersection: true,
                }));
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
            [w[0] * a[0] + w[1] * c1[0] + w[2] * c2[0] + w[3] * b[0], w[0] * a[1] + w[1] * c1[1] + w[2] * c2[1] + w[3] * b[1]]
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
