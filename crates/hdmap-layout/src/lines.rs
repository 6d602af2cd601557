//! Lane lines: line pieces (dashes, parts of solid lines, merged double lines) chained end to
//! end into lines, then split into runs of one paint pattern — solid, dashed (with the dash
//! pattern measured) or double — each run one lane boundary.

use hdmap_core::{DashPattern, LineType, MarkingColor};

use crate::config::LayoutConfig;
use crate::geom::{P2, cross, dot, norm, segments_cross, sub, unit};

/// A piece of a line: its centre line (ordered), colour, width.
#[derive(Debug, Clone)]
pub struct LinePiece {
    /// Centre line.
    pub line: Vec<P2>,
    /// Yellow.
    pub yellow: bool,
    /// Width, m.
    pub width: f64,
    /// Two lines merged into one wide piece (double line).
    pub double: bool,
}

impl LinePiece {
    fn len(&self) -> f64 {
        crate::geom::length(&self.line)
    }
    /// End point and outward direction of end `e` (0 = start, 1 = end).
    fn end(&self, e: usize) -> (P2, P2) {
        let n = self.line.len();
        if e == 0 {
            let d = unit(sub(self.line[1.min(n - 1)], self.line[0]));
            (self.line[0], d)
        } else {
            let d = unit(sub(self.line[n.saturating_sub(2)], self.line[n - 1]));
            (self.line[n - 1], d)
        }
    }
}

/// A lane boundary found in the image.
#[derive(Debug, Clone)]
pub struct FoundBoundary {
    /// Line type.
    pub line_type: LineType,
    /// Colour.
    pub color: MarkingColor,
    /// Width of one painted line, m.
    pub width_m: f64,
    /// Dash pattern of dashed runs.
    pub dash: Option<DashPattern>,
    /// Centre line (through the dash gaps).
    pub points: Vec<P2>,
}

/// Chains pieces into lines and splits them into boundaries. `barriers` are segments (stop
/// lines, crosswalk sides) a bridged gap must not cross.
#[allow(clippy::needless_range_loop)] // ends (piece, end) index `link` and `pieces` alike
pub fn boundaries(pieces: Vec<LinePiece>, barriers: &[(P2, P2)], cfg: &LayoutConfig) -> Vec<FoundBoundary> {
    let n = pieces.len();
    // link[i][e] = (j, ej): end e of piece i continues into end ej of piece j.
    let mut link: Vec<[Option<(usize, usize)>; 2]> = vec![[None, None]; n];
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while p[r] != r {
            r = p[r];
        }
        p[i] = r;
        r
    }
    for pass in 0..2 {
        let max_gap = if pass == 0 { cfg.max_dash_gap_m } else { cfg.max_bridge_gap_m };
        let mut cands: Vec<(f64, usize, usize, usize, usize)> = Vec::new();
        for i in 0..n {
            for ei in 0..2 {
                if link[i][ei].is_some() {
                    continue;
                }
                let (pi, di) = pieces[i].end(ei);
                for j in 0..n {
                    if j == i || pieces[j].yellow != pieces[i].yellow {
                        continue;
                    }
                    for ej in 0..2 {
                        if link[j][ej].is_some() {
                            continue;
                        }
                        let (pj, dj) = pieces[j].end(ej);
                        let gap = sub(pi, pj);
                        let along = dot(gap, di);
                        let lateral = cross(di, gap).abs();
                        if along < -1.0
                            || along > max_gap
                            || lateral > cfg.chain_lateral_m + 0.01 * along.max(0.0)
                        {
                            continue;
                        }
                        // The other piece must continue the line: its outward direction points back.
                        if dot(di, dj) > -0.985 {
                            continue;
                        }
                        if pass == 1 {
                            // Bridging an occlusion: only between long (solid) pieces, never
                            // across a stop line or a crosswalk.
                            if pieces[i].len() < 6.0
                                || pieces[j].len() < 6.0
                                || barriers.iter().any(|(a, b)| segments_cross(pi, pj, *a, *b))
                            {
                                continue;
                            }
                        }
                        cands.push((along.max(0.0) + 10.0 * lateral, i, ei, j, ej));
                    }
                }
            }
        }
        cands.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, i, ei, j, ej) in cands {
            if link[i][ei].is_some() || link[j][ej].is_some() {
                continue;
            }
            let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
            if ri == rj {
                continue;
            }
            parent[ri] = rj;
            link[i][ei] = Some((j, ej));
            link[j][ej] = Some((i, ei));
        }
    }
    // Walk chains from a free end.
    let mut seen = vec![false; n];
    let mut out = Vec::new();
    for start in 0..n {
        if seen[start] {
            continue;
        }
        // Find a free end of this chain.
        let (mut cur, mut entry) = (start, 0usize);
        let mut guard = 0;
        while let Some((j, ej)) = link[cur][entry] {
            cur = j;
            entry = 1 - ej;
            guard += 1;
            if guard > n {
                break;
            }
        }
        // Now `entry` of `cur` is free: walk forward from it.
        let mut chain: Vec<(usize, bool)> = Vec::new();
        let mut from = entry;
        loop {
            seen[cur] = true;
            chain.push((cur, from == 1));
            let exit = 1 - from;
            match link[cur][exit] {
                Some((j, ej)) if !seen[j] => {
                    cur = j;
                    from = ej;
                }
                _ => break,
            }
        }
        out.extend(split_runs(&pieces, &chain));
    }
    out
}

/// Splits a chain (pieces with reversal flags, in order) into runs of one pattern.
fn split_runs(pieces: &[LinePiece], chain: &[(usize, bool)]) -> Vec<FoundBoundary> {
    let lines: Vec<Vec<P2>> = chain
        .iter()
        .map(|&(i, rev)| {
            let mut l = pieces[i].line.clone();
            if rev {
                l.reverse();
            }
            l
        })
        .collect();
    let lens: Vec<f64> = lines.iter().map(|l| crate::geom::length(l)).collect();
    let is_dash: Vec<bool> = lens.iter().map(|l| *l < 5.0).collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < chain.len() {
        let mut e = k;
        while e + 1 < chain.len() && is_dash[e + 1] == is_dash[k] {
            e += 1;
        }
        let run: Vec<usize> = (k..=e).collect();
        let yellow = run.iter().filter(|&&r| pieces[chain[r].0].yellow).count() * 2 > run.len();
        let double = run.iter().filter(|&&r| pieces[chain[r].0].double).count() * 2 > run.len();
        let mut points: Vec<P2> = Vec::new();
        for &r in &run {
            for p in &lines[r] {
                if points.last().is_none_or(|q| norm(sub(*q, *p)) > 0.05) {
                    points.push(*p);
                }
            }
        }
        let dashed = is_dash[k] && run.len() >= 2;
        let total: f64 = crate::geom::length(&points);
        if points.len() >= 2 && (dashed || total >= 2.0) {
            let mut widths: Vec<f64> = run.iter().map(|&r| pieces[chain[r].0].width).collect();
            widths.sort_by(f64::total_cmp);
            let mut width = widths[widths.len() / 2];
            let line_type = match (double, dashed) {
                (true, true) => LineType::DoubleDashed,
                (true, false) => LineType::DoubleSolid,
                (false, true) => LineType::Dashed,
                (false, false) => LineType::Solid,
            };
            if double {
                // A merged double line: two lines and their gap; report one line's width.
                width = ((width - 0.12) / 2.0).max(0.08);
            }
            let dash = dashed.then(|| {
                let mut paints: Vec<f64> = run.iter().map(|&r| lens[r]).collect();
                paints.sort_by(f64::total_cmp);
                let mut gaps: Vec<f64> = run
                    .windows(2)
                    .map(|w| norm(sub(*lines[w[0]].last().unwrap_or(&[0.0; 2]), lines[w[1]][0])))
                    .collect();
                gaps.sort_by(f64::total_cmp);
                DashPattern {
                    paint_m: paints[paints.len() / 2],
                    gap_m: gaps.get(gaps.len() / 2).copied().unwrap_or(0.0),
                    phase_m: 0.0,
                }
            });
            out.push(FoundBoundary {
                line_type,
                color: if yellow { MarkingColor::Yellow } else { MarkingColor::White },
                width_m: width,
                dash,
                points,
            });
        }
        k = e + 1;
    }
    // Where a dashed run meets a solid one, the pattern changes at the solid line's end: the
    // dashed boundary runs through its first gap up to there.
    for r in 0..out.len().saturating_sub(1) {
        let (a_dashed, b_dashed) = (out[r].dash.is_some(), out[r + 1].dash.is_some());
        if a_dashed == b_dashed {
            continue;
        }
        let gap = norm(sub(*out[r].points.last().unwrap_or(&[0.0; 2]), out[r + 1].points[0]));
        let max_gap = out[r].dash.or(out[r + 1].dash).map_or(0.0, |d| d.gap_m + 1.0);
        if gap > max_gap {
            continue;
        }
        if a_dashed {
            let p = out[r + 1].points[0];
            out[r].points.push(p);
        } else {
            let p = *out[r].points.last().unwrap_or(&[0.0; 2]);
            out[r + 1].points.insert(0, p);
        }
    }
    out
}

/// Merges pairs of parallel yellow lines 0.15–0.45 m apart (a double line whose two lines were
/// found separately) into one double boundary along their middle.
pub fn merge_doubles(mut b: Vec<FoundBoundary>) -> Vec<FoundBoundary> {
    use crate::geom::{polyline_dist, resample};
    let mut removed = vec![false; b.len()];
    let mut merged = Vec::new();
    for i in 0..b.len() {
        if removed[i]
            || b[i].color != MarkingColor::Yellow
            || matches!(b[i].line_type, LineType::DoubleSolid | LineType::DoubleDashed)
        {
            continue;
        }
        for j in i + 1..b.len() {
            if removed[j]
                || b[j].color != MarkingColor::Yellow
                || matches!(b[j].line_type, LineType::DoubleSolid | LineType::DoubleDashed)
            {
                continue;
            }
            let (long, short) = if crate::geom::length(&b[i].points) >= crate::geom::length(&b[j].points) {
                (i, j)
            } else {
                (j, i)
            };
            let ss = resample(&b[short].points, 1.0);
            let seps: Vec<f64> = ss.iter().map(|p| polyline_dist(*p, &b[long].points)).collect();
            let close = seps.iter().filter(|d| (0.15..=0.45).contains(*d)).count();
            if close * 10 < ss.len() * 7 {
                continue;
            }
            let mut sorted = seps.clone();
            sorted.sort_by(f64::total_cmp);
            let half = sorted[sorted.len() / 2] / 2.0;
            // Shift the longer line half the separation toward the shorter one.
            let lp = &b[long].points;
            let n = lp.len();
            let probe = ss[ss.len() / 2];
            let k = (0..n.saturating_sub(1))
                .min_by(|&x, &y| {
                    crate::geom::seg_dist(probe, lp[x], lp[x + 1])
                        .0
                        .total_cmp(&crate::geom::seg_dist(probe, lp[y], lp[y + 1]).0)
                })
                .unwrap_or(0);
            let d = unit(sub(lp[k], lp[(k + 1).min(n - 1)]));
            let side = if cross(d, sub(lp[k], probe)) > 0.0 { 1.0 } else { -1.0 };
            let points: Vec<P2> = (0..n)
                .map(|q| {
                    let t = unit(sub(lp[q.saturating_sub(1)], lp[(q + 1).min(n - 1)]));
                    [lp[q][0] - t[1] * half * side, lp[q][1] + t[0] * half * side]
                })
                .collect();
            let dashed = (b[i].line_type == LineType::Dashed, b[j].line_type == LineType::Dashed);
            let line_type = match dashed {
                (false, false) => LineType::DoubleSolid,
                (true, true) => LineType::DoubleDashed,
                _ => LineType::DoubleSolid,
            };
            merged.push(FoundBoundary {
                line_type,
                color: MarkingColor::Yellow,
                width_m: 0.5 * (b[i].width_m + b[j].width_m),
                dash: b[long].dash,
                points,
            });
            removed[i] = true;
            removed[j] = true;
            break;
        }
    }
    let mut out: Vec<FoundBoundary> =
        b.drain(..).enumerate().filter(|(k, _)| !removed[*k]).map(|(_, x)| x).collect();
    out.extend(merged);
    out
}
