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

/// Pairs yellow line pieces that run side by side 0.15–0.45 m apart (the two lines of a double
/// line, found apart where they do not touch) into one double piece along their middle, so a
/// chain of such pairs and merged wide pieces runs along the double line's middle throughout.
///
/// The longest single yellow piece is paired first, with a piece of which 70 % lies beside it.
/// The double piece covers only the stretch where both are; the parts of either that run on
/// past the other go back to be paired again (the two lines break at different places). A
/// single yellow piece left lying along a double piece is a fragment of one of its lines.
pub fn pair_doubles(pieces: Vec<LinePiece>) -> Vec<LinePiece> {
    use crate::geom::{closest_on, resample};
    const STEP_M: f64 = 0.5;
    let beside = |d: f64| (0.15..=0.45).contains(&d);
    // `line` moved `half` metres to its left (`side` 1) or right (−1).
    let shift = |line: &[P2], side: f64, half: f64| -> Vec<P2> {
        (0..line.len())
            .map(|k| {
                let t = unit(sub(line[k.saturating_sub(1)], line[(k + 1).min(line.len() - 1)]));
                [line[k][0] - t[1] * half * side, line[k][1] + t[0] * half * side]
            })
            .collect()
    };
    let (singles, mut out): (Vec<LinePiece>, Vec<LinePiece>) =
        pieces.into_iter().partition(|p| p.yellow && !p.double);
    // Each single with, for a part left over from a pair, the side its partner was on and half
    // the separation.
    let mut singles: Vec<(LinePiece, Option<(f64, f64)>)> = singles.into_iter().map(|p| (p, None)).collect();
    // Parts of a piece outside samples `lo..=hi`, as pieces of their own when at least 1 m long.
    let rest = |s: &[P2], lo: usize, hi: usize, like: &LinePiece, hint: (f64, f64)| {
        [&s[..lo], &s[(hi + 1).min(s.len())..]]
            .into_iter()
            .filter(|part| part.len() >= 3)
            .map(|part| (LinePiece { line: part.to_vec(), ..like.clone() }, Some(hint)))
            .collect::<Vec<_>>()
    };
    // The side of `line` (+1: left) that `other` lies on, at sample `k`.
    let side_of = |line: &[P2], k: usize, other: &[P2]| {
        let t = sub(line[k.saturating_sub(1)], line[(k + 1).min(line.len() - 1)]);
        if cross(t, sub(line[k], closest_on(line[k], other).0)) > 0.0 { 1.0 } else { -1.0 }
    };
    loop {
        singles.sort_by(|a, b| b.0.len().total_cmp(&a.0.len()));
        let samples: Vec<Vec<P2>> = singles.iter().map(|s| resample(&s.0.line, STEP_M)).collect();
        let mut found = None;
        'outer: for i in 0..singles.len() {
            for j in i + 1..singles.len() {
                let sb = &samples[j];
                let close = sb.iter().filter(|p| beside(closest_on(**p, &singles[i].0.line).1)).count();
                if singles[j].0.len() >= 0.5 && close * 10 >= sb.len() * 7 {
                    found = Some((i, j));
                    break 'outer;
                }
            }
        }
        let Some((i, j)) = found else { break };
        let (sa, sb) = (samples[i].clone(), samples[j].clone());
        let b = singles.remove(j).0;
        let a = singles.remove(i).0;
        let near: Vec<(P2, f64)> = sa.iter().map(|p| closest_on(*p, &b.line)).collect();
        let paired: Vec<usize> = (0..sa.len()).filter(|&k| beside(near[k].1)).collect();
        let (Some(&lo), Some(&hi)) = (paired.first(), paired.last()) else { continue };
        let mut seps: Vec<f64> = paired.iter().map(|&k| near[k].1).collect();
        seps.sort_by(f64::total_cmp);
        let half = 0.5 * seps[seps.len() / 2];
        let side = side_of(&sa, lo, &b.line);
        // Along the longer piece: the midpoint with the shorter where it is beside it, else
        // (a gap in the shorter) half the median separation toward its side.
        let moved = shift(&sa[lo..=hi], side, half);
        let line: Vec<P2> = (lo..=hi)
            .map(|k| {
                let (p, (o, d)) = (sa[k], near[k]);
                if beside(d) { [0.5 * (p[0] + o[0]), 0.5 * (p[1] + o[1])] } else { moved[k - lo] }
            })
            .collect();
        singles.extend(rest(&sa, lo, hi, &a, (side, half)));
        let on_a: Vec<usize> = (0..sb.len()).filter(|&k| beside(closest_on(sb[k], &a.line).1)).collect();
        if let (Some(&blo), Some(&bhi)) = (on_a.first(), on_a.last()) {
            singles.extend(rest(&sb, blo, bhi, &b, (side_of(&sb, blo, &a.line), half)));
        }
        if line.len() >= 2 {
            out.push(LinePiece {
                line,
                yellow: true,
                width: 2.0 * half + 0.5 * (a.width + b.width),
                double: true,
            });
        }
    }
    // A fragment of one of a double line's two lines (0.15–0.25 m from its middle) left over
    // beside a double piece is part of it.
    let doubles: Vec<Vec<P2>> = out.iter().filter(|p| p.double).map(|p| p.line.clone()).collect();
    singles.retain(|(p, _)| {
        let s = resample(&p.line, 0.25);
        !doubles.iter().any(|d| s.iter().filter(|q| closest_on(**q, d).1 <= 0.3).count() * 10 >= s.len() * 7)
    });
    // A short part left over from a pair (up to 5 m: where its partner line has a break) is the
    // double line there, half the separation over. A longer one stays a single line: a double
    // line may go on as a single one.
    out.extend(singles.into_iter().map(|(p, hint)| match hint {
        Some((side, half)) if p.len() <= 5.0 => {
            LinePiece { line: shift(&p.line, side, half), width: 2.0 * half + p.width, double: true, ..p }
        }
        _ => p,
    }));
    out
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
    let mut is_dash: Vec<bool> = lens.iter().map(|l| *l < 5.0).collect();
    // Short pieces within a gap of less than 5 m between two long ones are fragments of one
    // solid line, not a dashed stretch (a dashed run has dashes and gaps of metres).
    let mut k = 1;
    while k + 1 < chain.len() {
        let e = (k..chain.len()).find(|&e| !is_dash[e]).unwrap_or(chain.len());
        if is_dash[k]
            && !is_dash[k - 1]
            && e < chain.len()
            && norm(sub(*lines[k - 1].last().unwrap_or(&[0.0; 2]), lines[e][0])) < 5.0
        {
            is_dash[k..e].fill(false);
        }
        k = e.max(k + 1);
    }
    let mut out = Vec::new();
    let mut k = 0;
    while k < chain.len() {
        let mut e = k;
        while e + 1 < chain.len() && is_dash[e + 1] == is_dash[k] {
            e += 1;
        }
        let run: Vec<usize> = (k..=e).collect();
        let yellow = run.iter().filter(|&&r| pieces[chain[r].0].yellow).count() * 2 > run.len();
        // Double when most of the run's paint is: one long merged piece outweighs the short
        // single-line fragments chained to it where its two lines parted.
        let double_len: f64 = run.iter().filter(|&&r| pieces[chain[r].0].double).map(|&r| lens[r]).sum();
        let double = 2.0 * double_len > run.iter().map(|&r| lens[r]).sum::<f64>();
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
    let is_double = |f: &FoundBoundary| matches!(f.line_type, LineType::DoubleSolid | LineType::DoubleDashed);
    let mut removed = vec![false; b.len()];
    let mut merged = Vec::new();
    for i in 0..b.len() {
        if removed[i] || b[i].color != MarkingColor::Yellow || is_double(&b[i]) {
            continue;
        }
        for j in i + 1..b.len() {
            if removed[j] || b[j].color != MarkingColor::Yellow || is_double(&b[j]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(x0: f64, x1: f64, y: f64, double: bool) -> LinePiece {
        let n = ((x1 - x0) / 0.5).ceil() as usize;
        let line = (0..=n).map(|k| [x0 + (x1 - x0) * k as f64 / n as f64, y]).collect();
        LinePiece { line, yellow: true, width: if double { 0.46 } else { 0.15 }, double }
    }

    #[test]
    fn a_double_line_found_as_a_wide_piece_and_two_broken_lines_runs_along_its_middle() {
        // A double line along x with its two lines 0.32 m apart (centres at y = ±0.16): where
        // they touch the mask makes one wide piece (x 24–80), where they part two lines, broken
        // at different places (a fragment of the lower one left in its break).
        let pieces = vec![
            piece(0.0, 23.0, 0.16, false),
            piece(0.0, 21.5, -0.16, false),
            piece(21.9, 22.8, -0.16, false),
            piece(24.0, 80.0, 0.0, true),
        ];
        let found = merge_doubles(boundaries(pair_doubles(pieces), &[], &LayoutConfig::default()));
        assert_eq!(found.len(), 1, "one boundary: {found:?}");
        let b = &found[0];
        assert_eq!(b.line_type, LineType::DoubleSolid);
        assert_eq!(b.color, MarkingColor::Yellow);
        let worst = b.points.iter().map(|p| p[1].abs()).fold(0.0, f64::max);
        assert!(worst < 0.01, "the line runs along the middle; worst offset {worst:.3} m");
        let xs = b.points.iter().map(|p| p[0]);
        let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |a, x| (a.0.min(x), a.1.max(x)));
        assert!(lo < 0.5 && hi > 79.5, "it spans the paint: x {lo:.2}..{hi:.2}");
    }

    #[test]
    fn a_break_in_one_line_of_a_curved_double_line_is_bridged_along_its_middle() {
        // A double line on a 60 m radius arc (lines 0.32 m apart), the outer line whole, the
        // inner one broken for 3 m in the middle.
        let arc = |r: f64, a0: f64, a1: f64| -> LinePiece {
            let n = ((a1 - a0) * r / 0.5).ceil() as usize;
            let line = (0..=n)
                .map(|k| a0 + (a1 - a0) * k as f64 / n as f64)
                .map(|a| [r * a.cos(), r * a.sin()])
                .collect();
            LinePiece { line, yellow: true, width: 0.15, double: false }
        };
        let (r, gap) = (60.0, 3.0 / 60.0);
        let pieces = vec![
            arc(r + 0.16, 0.0, 1.0),
            arc(r - 0.16, 0.0, 0.5 - gap / 2.0),
            arc(r - 0.16, 0.5 + gap / 2.0, 1.0),
        ];
        let found = merge_doubles(boundaries(pair_doubles(pieces), &[], &LayoutConfig::default()));
        assert_eq!(found.len(), 1, "one boundary: {found:?}");
        assert_eq!(found[0].line_type, LineType::DoubleSolid);
        let worst = found[0].points.iter().map(|p| (p[0].hypot(p[1]) - r).abs()).fold(0.0, f64::max);
        assert!(worst < 0.02, "the line runs along the middle, the break too; worst offset {worst:.3} m");
    }

    #[test]
    fn a_lone_yellow_line_is_not_paired_with_a_line_a_lane_away() {
        let pieces = vec![piece(0.0, 30.0, 0.0, false), piece(0.0, 30.0, 3.5, false)];
        let out = pair_doubles(pieces);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|p| !p.double));
    }
}
