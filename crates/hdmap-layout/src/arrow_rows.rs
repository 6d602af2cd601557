//! Arrows read from their row: the arrows the glyph recogniser could not take alone.
//!
//! A car parked on an arrow leaves only fragments of it in the orthophoto: the end of the
//! shaft, the tip of a turn head. An arrow whose head touches its lane line is joined to the
//! line in the paint mask. Neither fits a glyph as a piece of its own. Three facts make them
//! readable:
//!
//! * arrows of one approach are painted in a row, their tails level across the lanes, so an
//!   arrow seen in one lane says where its neighbours' arrows would be, and which way they point;
//! * a lane's edge lines are known, so paint along them can be set aside as theirs;
//! * the DSM says what is hidden: a surface well above the road is a car (or anything else
//!   standing on the road), and the road under it is unknown, not bare.
//!
//! At each place where a neighbour's arrow would be, every glyph is fitted to the paint of the
//! visible road only (the paint pieces, and a second detector's raw paint if one is given:
//! a fragment beside a car may be too small or too one-sided for the piece filters). An arrow
//! is added where one glyph explains that paint well, clearly better than any other glyph (a
//! bare shaft fits every kind and tells none). Without a DSM nothing
//! counts as hidden, and only arrows joined to a line are read.
//!
//! An arrow points at its stop line: one that points away from the stop line behind it is a
//! glyph turned round ([`turned_round`]), and no row is read from it.

use hdmap_core::ArrowKind;

use crate::geom::{P2, cross, dot, in_polygon, length, norm, polygon_edge_dist, segments_cross, sub, unit};
use crate::marks::{ARROW_KINDS, FoundArrow};
use crate::pieces::Piece;

/// A lane line, for finding the lanes beside an arrow.
pub struct LaneLine<'a> {
    /// Polyline (through dash gaps).
    pub points: &'a [P2],
    /// Yellow: traffic beyond it runs the other way.
    pub yellow: bool,
}

/// Height above the road from which a surface hides the road, m.
const RAISED_M: f64 = 0.3;
/// Paint within this distance of a lane's edge line may be the line's: neither evidence for
/// nor against an arrow, m.
const EDGE_CLEAR_M: f64 = 0.25;
/// Searched offsets of the tail from the row's level (along) and the lane's middle (across), m.
const ALONG_SEARCH_M: f64 = 0.25;
const ACROSS_SEARCH_M: f64 = 0.15;
/// The fit on the visible road: painted glyph pixels over those plus the mismatched ones.
const MIN_FIT: f64 = 0.6;
/// By how much the chosen kind's mismatched area must be smaller than every other kind's, m².
const MIN_KIND_EVIDENCE_M2: f64 = 0.04;
/// Painted glyph area that must be seen, m².
const MIN_PAINT_M2: f64 = 0.05;
/// A glyph less hidden than this must fit as a clean glyph does (`MIN_FIT_SEEN`): the paint
/// of a mostly visible arrow that the recogniser did not take is read only where it is joined
/// to a lane line, which the slot's edge bands set aside.
const MIN_HIDDEN: f64 = 0.3;
const MIN_FIT_SEEN: f64 = 0.85;
/// Shortest lane line taken for a lane's edge, m.
const MIN_EDGE_M: f64 = 8.0;
/// How far a lane line is taken to reach on past its ends, m.
const LINE_END_REACH_M: f64 = 4.0;

/// A place where an arrow would be: the tail's middle, the direction, and the offsets of the
/// lane's edge lines across it (along the left normal). The edges are taken as straight over
/// the arrow's length: where a lane line has merged with an arrow's head its polyline may stop
/// short of it.
struct Slot {
    tail: P2,
    dir: P2,
    edges_v: [f64; 2],
}

/// The DSM, as the slots need it.
pub trait Surface {
    /// Height of the surface at `p`.
    fn z_at(&self, p: P2) -> Option<f64>;
    /// The lowest surface within `radius_m` of `p`.
    fn lowest_within(&self, p: P2, radius_m: f64) -> Option<f64>;
}

/// More paint for a slot: the pixel centres (on the orthophoto's lattice) a second paint
/// detector marks within the box of the given corners.
pub type MorePaint<'a> = &'a dyn Fn([P2; 4]) -> Vec<P2>;

/// Arrows in the rows of the `seen` ones (see the module doc), in lanes between `lines`, for
/// approaches with one of `stop_lines`. `pieces` are the paint pieces (pixel centres on the
/// lattice of a north-up orthophoto with square pixels of size `gsd`); `more_paint`, if given,
/// adds a second detector's paint in each slot; `surface` is the DSM, if there is one.
pub fn arrows_in_rows(
    seen: &[FoundArrow],
    lines: &[LaneLine<'_>],
    stop_lines: &[&[P2]],
    pieces: &[Piece],
    more_paint: Option<MorePaint<'_>>,
    gsd: f64,
    surface: Option<&dyn Surface>,
) -> Vec<FoundArrow> {
    let mut found: Vec<FoundArrow> = Vec::new();
    let mut tried: Vec<P2> = Vec::new();
    // A seed must point at a stop line: an arrow is painted before its stop line (a glyph fit
    // with its head hidden may have turned it round, and its row with it). An arrow found here
    // seeds its own neighbours in turn.
    let mut seeds: Vec<FoundArrow> =
        seen.iter().filter(|a| stop_line_ahead(a, stop_lines)).cloned().collect();
    while let Some(seed) = seeds.pop() {
        for s in slots_beside(&seed, lines) {
            if tried.iter().any(|t| norm(sub(*t, s.tail)) < 1.0) {
                continue;
            }
            tried.push(s.tail);
            // A lane that has its arrow (seen, or found here already) needs none.
            let taken = seen.iter().chain(found.iter()).any(|a| {
                let c = sub(s.tail, crate::geom::polygon_centroid(&a.polygon));
                cross(s.dir, c).abs() < 1.2 && (-2.0..=7.0).contains(&dot(s.dir, c))
            });
            if !taken && let Some(a) = fit_slot(&s, pieces, more_paint, gsd, surface) {
                seeds.push(a.clone());
                found.push(a);
            }
        }
    }
    found
}

/// Whether a stop line crosses the ray from the arrow's tip along its direction within 40 m.
fn stop_line_ahead(a: &FoundArrow, stop_lines: &[&[P2]]) -> bool {
    stop_line_within(a, stop_lines, 1.0, 40.0)
}

/// An arrow pointing away from the stop line behind it (within 25 m of its tail) with none
/// ahead: a glyph turned round, as a fit with the head hidden may be (an arrow is painted
/// before its stop line; the stop line of the other direction spans only its own lanes).
pub fn turned_round(a: &FoundArrow, stop_lines: &[&[P2]]) -> bool {
    !stop_line_ahead(a, stop_lines) && stop_line_within(a, stop_lines, -1.0, 25.0)
}

/// Whether a stop line crosses the ray from the arrow's tip forward (`sense` 1) or from its
/// tail backward (`sense` −1), within `reach_m`.
fn stop_line_within(a: &FoundArrow, stop_lines: &[&[P2]], sense: f64, reach_m: f64) -> bool {
    let d = [a.direction[0] * sense, a.direction[1] * sense];
    let from = a.polygon.iter().copied().max_by(|p, q| dot(*p, d).total_cmp(&dot(*q, d)));
    let Some(from) = from else { return false };
    let far = [from[0] + d[0] * reach_m, from[1] + d[1] * reach_m];
    stop_lines.iter().any(|l| l.windows(2).any(|w| segments_cross(from, far, w[0], w[1])))
}

/// The tail of an arrow: the middle of its glyph's first and last vertex (every glyph starts
/// and ends at the two corners of its shaft's end).
fn tail_of(a: &FoundArrow) -> P2 {
    let (p, q) = (a.polygon[0], a.polygon[a.polygon.len() - 1]);
    [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0]
}

/// The lanes beside an arrow's, up to three on each side, as far as lines parallel to the arrow
/// lie 2.5–4.5 m apart and no yellow line is crossed.
fn slots_beside(a: &FoundArrow, lines: &[LaneLine<'_>]) -> Vec<Slot> {
    let (tail, dir) = (tail_of(a), a.direction);
    let n = [-dir[1], dir[0]];
    // Crossings of the line through the tail across the lanes with the lane lines: (offset
    // along n, line index, yellow, the line's direction there, oriented along the arrow).
    let mut hits: Vec<(f64, usize, bool, P2)> = Vec::new();
    // (A short line inside a lane is no lane's edge: it may be a fragment of a hidden arrow.)
    for (i, l) in lines.iter().enumerate().filter(|(_, l)| length(l.points) >= MIN_EDGE_M) {
        let last = l.points.len() - 2;
        for (k, w) in l.points.windows(2).enumerate() {
            let d = sub(w[0], w[1]);
            let len = norm(d);
            if len < 1e-9 || (dot(d, dir) / len).abs() < 0.985 {
                continue;
            }
            // tail + s·n = w0 + t·d
            let den = cross(n, d);
            if den.abs() < 1e-12 {
                continue;
            }
            let r = sub(tail, w[0]);
            let s = cross(r, d) / den;
            let t = cross(r, n) / den;
            // A line's ends reach on by `LINE_END_REACH_M` (a lane line joined to an arrow's
            // head by the paint mask ends short of the row).
            let t0 = if k == 0 { -LINE_END_REACH_M / len } else { 0.0 };
            let t1 = if k == last { 1.0 + LINE_END_REACH_M / len } else { 1.0 };
            if (t0..=t1).contains(&t) && s.abs() < 15.0 {
                let along = if dot(d, dir) > 0.0 { unit(d) } else { unit([-d[0], -d[1]]) };
                hits.push((s, i, l.yellow, along));
            }
        }
    }
    let mut out = Vec::new();
    for sign in [1.0, -1.0] {
        let mut side: Vec<(f64, usize, bool, P2)> =
            hits.iter().filter(|h| h.0 * sign > 0.0).map(|h| (h.0 * sign, h.1, h.2, h.3)).collect();
        side.sort_by(|x, y| x.0.total_cmp(&y.0));
        side.dedup_by(|b, a| b.1 == a.1);
        for k in 0..side.len().saturating_sub(1).min(3) {
            let (lo, hi) = (side[k], side[k + 1]);
            if lo.2 || !(2.5..=4.5).contains(&(hi.0 - lo.0)) {
                break;
            }
            // The lane runs along its edge lines (a glyph fit's heading may be a degree off,
            // 9 cm over an arrow's length).
            let mid = sign * (lo.0 + hi.0) / 2.0;
            let lane_dir = unit([lo.3[0] + hi.3[0], lo.3[1] + hi.3[1]]);
            out.push(Slot {
                tail: [tail[0] + n[0] * mid, tail[1] + n[1] * mid],
                dir: lane_dir,
                edges_v: [sign * lo.0 - mid, sign * hi.0 - mid],
            });
        }
    }
    out
}

/// A glyph placed in a slot: tail offset (along, across), visible painted glyph pixels,
/// mismatched pixels, share of the glyph hidden.
struct Fit {
    kind: ArrowKind,
    off: P2,
    painted: usize,
    mismatched: usize,
    hidden: f64,
}

/// What a pixel of a slot shows.
#[derive(Clone, Copy, PartialEq)]
enum Seen {
    /// Under something standing on the road, or by a lane line: unknown.
    Unknown,
    Paint,
    Bare,
}

/// The pixel of a lattice of pitch `gsd` through `origin` nearest `q`.
fn lattice(q: P2, origin: P2, gsd: f64) -> (i64, i64) {
    (((q[0] - origin[0]) / gsd).round() as i64, ((q[1] - origin[1]) / gsd).round() as i64)
}

/// Fits every glyph to the slot's visible road (see the module doc).
fn fit_slot(
    s: &Slot,
    pieces: &[Piece],
    more_paint: Option<MorePaint<'_>>,
    gsd: f64,
    surface: Option<&dyn Surface>,
) -> Option<FoundArrow> {
    let (dir, n) = (s.dir, [-s.dir[1], s.dir[0]]);
    let (u0, u1, vmax) = (-0.5 - ALONG_SEARCH_M, 5.5 + ALONG_SEARCH_M, 2.0);
    let mid = [s.tail[0] + dir[0] * 2.5, s.tail[1] + dir[1] * 2.5];
    // What stands on the road hides it: a surface over `RAISED_M` above the road's height (the
    // lowest surface near the slot; a car is 4–5 m by 2 m), within a few centimetres (the
    // DSM's cells are coarser than the orthophoto's pixels). Off the DSM is hidden too.
    let ground = match surface {
        Some(dsm) => Some(dsm.lowest_within(mid, 3.5)?),
        None => None,
    };
    let raised = |p: P2| match (surface, ground) {
        (Some(dsm), Some(g)) => [[0.0, 0.0], [0.12, 0.0], [-0.12, 0.0], [0.0, 0.12], [0.0, -0.12]]
            .iter()
            .any(|o| dsm.z_at([p[0] + o[0], p[1] + o[1]]).is_none_or(|z| z > g + RAISED_M)),
        _ => false,
    };
    // Paint pixels in the slot's box, on the lattice of the orthophoto's pixel centres.
    let in_box = |q: P2| {
        let r = sub(s.tail, q);
        let (u, v) = (dot(r, dir), dot(r, n));
        (u0..=u1).contains(&u) && v.abs() <= vmax
    };
    let reach = norm([u1, vmax]) + 1.0;
    let mut reference: Option<P2> = None;
    let mut paint = std::collections::HashSet::new();
    for p in pieces {
        if norm(sub(mid, p.centroid)) > reach + p.length {
            continue;
        }
        for &q in &p.pts {
            if in_box(q) {
                let r = *reference.get_or_insert(q);
                paint.insert(lattice(q, r, gsd));
            }
        }
    }
    let corners = [[u0, -vmax], [u0, vmax], [u1, -vmax], [u1, vmax]]
        .map(|[u, v]| [s.tail[0] + dir[0] * u + n[0] * v, s.tail[1] + dir[1] * u + n[1] * v]);
    for q in more_paint.map(|f| f(corners)).unwrap_or_default() {
        if in_box(q) {
            let r = *reference.get_or_insert(q);
            paint.insert(lattice(q, r, gsd));
        }
    }
    let r = reference?;
    // Every lattice pixel of the box with what it shows, in the slot's (u, v).
    let lo = corners.iter().fold((i64::MAX, i64::MAX), |m, c| {
        let k = lattice(*c, r, gsd);
        (m.0.min(k.0), m.1.min(k.1))
    });
    let hi = corners.iter().fold((i64::MIN, i64::MIN), |m, c| {
        let k = lattice(*c, r, gsd);
        (m.0.max(k.0), m.1.max(k.1))
    });
    let mut px: Vec<(P2, Seen)> = Vec::new();
    for i in lo.0..=hi.0 {
        for j in lo.1..=hi.1 {
            let q = [r[0] + i as f64 * gsd, r[1] + j as f64 * gsd];
            if !in_box(q) {
                continue;
            }
            let d = sub(s.tail, q);
            let uv = [dot(d, dir), dot(d, n)];
            let seen = if raised(q) || s.edges_v.iter().any(|e| (uv[1] - e).abs() < EDGE_CLEAR_M) {
                Seen::Unknown
            } else if paint.contains(&(i, j)) {
                Seen::Paint
            } else {
                Seen::Bare
            };
            px.push((uv, seen));
        }
    }
    // Each kind at its best placement: the fewest mismatches (visible bare road inside the
    // glyph, visible paint outside it; within `tol` of its outline the mask's blur decides, so
    // neither counts).
    let tol = 1.5 * gsd;
    let steps = |m: f64| {
        let k = (m / 0.05).round() as i64;
        (-k..=k).map(|i| i as f64 * 0.05)
    };
    let mut per_kind: Vec<Fit> = Vec::new();
    for kind in ARROW_KINDS {
        let glyph = hdmap_core::layout::arrow_glyph(kind);
        let mut best: Option<Fit> = None;
        for du in steps(ALONG_SEARCH_M) {
            for dv in steps(ACROSS_SEARCH_M) {
                let mut f = Fit { kind, off: [du, dv], painted: 0, mismatched: 0, hidden: 0.0 };
                let (mut all, mut visible) = (0usize, 0usize);
                for &(uv, seen) in &px {
                    let g = [uv[0] - du, uv[1] - dv];
                    let inside = in_polygon(g, &glyph);
                    if inside {
                        all += 1;
                        visible += usize::from(seen != Seen::Unknown);
                        f.painted += usize::from(seen == Seen::Paint);
                    }
                    let telling = match seen {
                        Seen::Bare => inside,
                        Seen::Paint => !inside,
                        Seen::Unknown => false,
                    };
                    if telling && polygon_edge_dist(g, &glyph) > tol {
                        f.mismatched += 1;
                    }
                }
                f.hidden = 1.0 - visible as f64 / all.max(1) as f64;
                // Fewest mismatches, then most paint explained, then nearest the row's level
                // and the lane's middle.
                let rank = |f: &Fit| (f.mismatched, usize::MAX - f.painted, (1e4 * norm(f.off)) as i64);
                if best.as_ref().is_none_or(|b| rank(&f) < rank(b)) {
                    best = Some(f);
                }
            }
        }
        per_kind.extend(best);
    }
    per_kind.sort_by_key(|f| (f.mismatched, usize::MAX - f.painted));
    let best = per_kind.first()?;
    let px_m2 = gsd * gsd;
    let runner_up = per_kind.get(1).map_or(usize::MAX, |f| f.mismatched);
    let min_fit = if best.hidden < MIN_HIDDEN { MIN_FIT_SEEN } else { MIN_FIT };
    if (best.painted as f64) < min_fit * (best.painted + best.mismatched) as f64
        || ((runner_up - best.mismatched) as f64) * px_m2 < MIN_KIND_EVIDENCE_M2
        || (best.painted as f64) * px_m2 < MIN_PAINT_M2
    {
        return None;
    }
    let (kind, off) = (best.kind, best.off);
    let iou = best.painted as f64 / (best.painted + best.mismatched) as f64;
    let tail = [s.tail[0] + dir[0] * off[0] + n[0] * off[1], s.tail[1] + dir[1] * off[0] + n[1] * off[1]];
    let polygon = hdmap_core::layout::arrow_glyph(kind)
        .iter()
        .map(|g| [tail[0] + dir[0] * g[0] + n[0] * g[1], tail[1] + dir[1] * g[0] + n[1] * g[1]])
        .collect();
    Some(FoundArrow { kind, polygon, direction: unit(dir), iou })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GSD: f64 = 0.08;

    /// A glyph with its tail's middle at `tail`, pointing +x.
    fn placed(kind: ArrowKind, tail: P2) -> Vec<P2> {
        hdmap_core::layout::arrow_glyph(kind).iter().map(|g| [tail[0] + g[0], tail[1] + g[1]]).collect()
    }

    fn arrow(kind: ArrowKind, tail: P2) -> FoundArrow {
        FoundArrow { kind, polygon: placed(kind, tail), direction: [1.0, 0.0], iou: 1.0 }
    }

    /// The orthophoto's paint: pixel centres inside `shapes` that `hidden` does not cover, as
    /// one piece.
    fn paint(shapes: &[Vec<P2>], hidden: &dyn Fn(P2) -> bool) -> Piece {
        let mut pts = Vec::new();
        for i in -300..700 {
            for j in -50..200 {
                let q = [(i as f64 + 0.5) * GSD, (j as f64 + 0.5) * GSD];
                if shapes.iter().any(|s| in_polygon(q, s)) && !hidden(q) {
                    pts.push(q);
                }
            }
        }
        Piece::new(pts, 0.0, GSD)
    }

    /// A 0.15 m wide lane line along y = `y` from x = −20 to 50.
    fn line_strip(y: f64) -> Vec<P2> {
        vec![[-20.0, y - 0.075], [50.0, y - 0.075], [50.0, y + 0.075], [-20.0, y + 0.075]]
    }

    /// Three lanes heading +x between lines at y = 0, 3.5, 7, 10.5, a stop line across them at
    /// x = 30; arrow tails at x = 10 on the lanes' middles (y = 1.75, 5.25, 8.75).
    struct Road {
        line_pts: Vec<Vec<P2>>,
        stop: Vec<P2>,
    }

    fn road() -> Road {
        Road {
            line_pts: [0.0, 3.5, 7.0, 10.5].iter().map(|&y| vec![[-20.0, y], [50.0, y]]).collect(),
            stop: vec![[30.0, 0.0], [30.0, 10.5]],
        }
    }

    /// A flat road at height 0 with cars 1.5 m high on it.
    struct Cars<F: Fn(P2) -> bool>(F);

    impl<F: Fn(P2) -> bool> Surface for Cars<F> {
        fn z_at(&self, p: P2) -> Option<f64> {
            Some(if (self.0)(p) { 1.5 } else { 0.0 })
        }
        fn lowest_within(&self, _: P2, _: f64) -> Option<f64> {
            // (Every slot of these scenes has road around it.)
            Some(0.0)
        }
    }

    fn in_rect(q: P2, x0: f64, y0: f64, x1: f64, y1: f64) -> bool {
        (x0..=x1).contains(&q[0]) && (y0..=y1).contains(&q[1])
    }

    fn read(
        seen: &[FoundArrow],
        pieces: &[Piece],
        more: Option<MorePaint<'_>>,
        dsm: Option<&dyn Surface>,
    ) -> Vec<FoundArrow> {
        let r = road();
        let lines: Vec<LaneLine<'_>> =
            r.line_pts.iter().map(|p| LaneLine { points: p, yellow: false }).collect();
        arrows_in_rows(seen, &lines, &[r.stop.as_slice()], pieces, more, GSD, dsm)
    }

    fn tail_error(a: &FoundArrow, tail: P2) -> f64 {
        norm(sub(tail_of(a), tail))
    }

    #[test]
    fn arrows_under_parked_cars_are_read_beside_an_arrow_seen_in_their_row() {
        // Lane 3 (left): a left arrow under a car but for its head's tip. Lane 1 (right): a
        // straight-right arrow whose straight head and the middle of its shaft are under a car;
        // its tail and its right head show.
        let cars = |q: P2| in_rect(q, 9.0, 7.4, 14.0, 9.9) || in_rect(q, 11.2, 0.95, 16.0, 2.6);
        let z = Cars(cars);
        let shapes = vec![
            placed(ArrowKind::Straight, [10.0, 5.25]),
            placed(ArrowKind::Left, [10.0, 8.75]),
            placed(ArrowKind::StraightRight, [10.0, 1.75]),
        ];
        let mut pieces: Vec<Piece> =
            [0.0, 3.5, 7.0, 10.5].iter().map(|&y| paint(&[line_strip(y)], &cars)).collect();
        pieces.push(paint(&shapes, &cars));
        let seen = [arrow(ArrowKind::Straight, [10.0, 5.25])];
        let found = read(&seen, &pieces, None, Some(&z));
        assert_eq!(found.len(), 2, "{found:?}");
        for (kind, tail) in [(ArrowKind::Left, [10.0, 8.75]), (ArrowKind::StraightRight, [10.0, 1.75])] {
            let a = found.iter().find(|a| a.kind == kind).unwrap_or_else(|| panic!("no {kind:?}: {found:?}"));
            assert!(tail_error(a, tail) < 0.1, "{kind:?} at {:?}", tail_of(a));
            assert!(a.direction[0] > 0.999);
        }
        // Without the DSM the cars' roofs are bare road where the glyphs need paint.
        assert!(read(&seen, &pieces, None, None).is_empty());
    }

    #[test]
    fn a_second_detectors_paint_counts_in_a_slot() {
        // As above, but the pieces lack the hidden arrows' fragments (a segmenter that left
        // them out); the second detector marks them.
        let cars = |q: P2| in_rect(q, 9.0, 7.4, 14.0, 9.9) || in_rect(q, 11.2, 0.95, 16.0, 2.6);
        let z = Cars(cars);
        let hidden = [placed(ArrowKind::Left, [10.0, 8.75]), placed(ArrowKind::StraightRight, [10.0, 1.75])];
        let fragments = paint(&hidden, &cars).pts;
        let mut pieces: Vec<Piece> =
            [0.0, 3.5, 7.0, 10.5].iter().map(|&y| paint(&[line_strip(y)], &cars)).collect();
        pieces.push(paint(&[placed(ArrowKind::Straight, [10.0, 5.25])], &cars));
        let seen = [arrow(ArrowKind::Straight, [10.0, 5.25])];
        assert!(read(&seen, &pieces, None, Some(&z)).is_empty(), "the pieces alone show nothing");
        // The detector answers for the slot's box (here: every fragment within its x range).
        let more = |c: [P2; 4]| {
            let x0 = c.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
            let x1 = c.iter().map(|p| p[0]).fold(f64::NEG_INFINITY, f64::max);
            fragments.iter().copied().filter(|q| (x0..=x1).contains(&q[0])).collect()
        };
        let found = read(&seen, &pieces, Some(&more), Some(&z));
        let kinds: Vec<ArrowKind> = found.iter().map(|a| a.kind).collect();
        assert_eq!(kinds.len(), 2, "{found:?}");
        assert!(kinds.contains(&ArrowKind::Left) && kinds.contains(&ArrowKind::StraightRight), "{kinds:?}");
    }

    #[test]
    fn a_bare_shaft_tells_no_kind_and_a_car_over_an_empty_lane_hides_no_arrow() {
        // Lane 1: only the first 2 m of a straight-right arrow's shaft show (every glyph has
        // that shaft). Lane 3: a car, and no arrow under it.
        let cars = |q: P2| in_rect(q, 12.0, 0.3, 17.0, 3.2) || in_rect(q, 9.0, 7.4, 14.0, 9.9);
        let z = Cars(cars);
        let shapes =
            vec![placed(ArrowKind::Straight, [10.0, 5.25]), placed(ArrowKind::StraightRight, [10.0, 1.75])];
        let mut pieces: Vec<Piece> =
            [0.0, 3.5, 7.0, 10.5].iter().map(|&y| paint(&[line_strip(y)], &cars)).collect();
        pieces.push(paint(&shapes, &cars));
        let found = read(&[arrow(ArrowKind::Straight, [10.0, 5.25])], &pieces, None, Some(&z));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn an_arrow_joined_to_its_lane_line_is_read_without_a_dsm() {
        // The left arrow's head reaches 5 cm into its lane line: one piece in the paint mask.
        let shapes = vec![placed(ArrowKind::Left, [10.0, 8.75 + 0.2]), line_strip(10.5)];
        let mut pieces: Vec<Piece> =
            [0.0, 3.5, 7.0].iter().map(|&y| paint(&[line_strip(y)], &|_| false)).collect();
        pieces.push(paint(&shapes, &|_| false));
        pieces.push(paint(&[placed(ArrowKind::Straight, [10.0, 5.25])], &|_| false));
        let found = read(&[arrow(ArrowKind::Straight, [10.0, 5.25])], &pieces, None, None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, ArrowKind::Left);
        assert!(tail_error(&found[0], [10.0, 8.95]) < 0.1, "{:?}", tail_of(&found[0]));
    }

    #[test]
    fn an_arrow_pointing_away_from_the_stop_line_behind_it_is_turned_round() {
        let stop = vec![[30.0, 0.0], [30.0, 10.5]];
        let toward = arrow(ArrowKind::Straight, [10.0, 5.25]);
        // The same glyph pointing −x, its tail 5 m past the stop line.
        let away = FoundArrow {
            polygon: hdmap_core::layout::arrow_glyph(ArrowKind::Straight)
                .iter()
                .map(|g| [35.0 + g[0], 5.25 + g[1]])
                .collect(),
            ..toward.clone()
        };
        let mut back = away.clone();
        back.direction = [-1.0, 0.0];
        back.polygon = hdmap_core::layout::arrow_glyph(ArrowKind::Straight)
            .iter()
            .map(|g| [40.0 - g[0], 5.25 - g[1]])
            .collect();
        assert!(!turned_round(&toward, &[stop.as_slice()]));
        assert!(turned_round(&away, &[stop.as_slice()]), "points +x away from the line behind it");
        assert!(!turned_round(&back, &[stop.as_slice()]), "points −x at the line");
        assert!(!turned_round(&away, &[]), "no stop line: nothing to tell");
    }
}
