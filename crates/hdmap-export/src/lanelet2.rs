//! The road layout as a Lanelet2 OSM map, Autoware flavour.
//!
//! * Every node carries WGS84 `lat`/`lon`, `ele` (the layout's height, its vertical datum) and
//!   `local_x`/`local_y` (UTM around the map origin, what Autoware's `LocalCartesianUTM`
//!   projector computes).
//! * Every [`Lane`] is a lanelet (`type=lanelet`, `subtype` from its kind, `location`,
//!   `one_way`; intersection lanes get Autoware's `turn_direction`). Its bounds are the lane's
//!   boundaries; a boundary that runs along several lanes one after another is cut between
//!   them, and neighbours share the very same way, so that Lanelet2's routing sees them as
//!   neighbours; lane-change permission follows the boundary's subtype.
//! * Successors share the nodes where one lane ends and the next begins (bound ends closer than
//!   [`Lanelet2Config::join_m`] are joined; a successor whose ends lie farther apart is reported,
//!   not invented).
//! * Stop lines are `stop_line` ways referenced from the lane through a `road_marking`
//!   regulatory element (Autoware); crosswalks are `crosswalk` lanelets between their two long
//!   sides (`pedestrian_marking`); arrows are `arrow` polygons (`area=yes`, subtype by kind)
//!   referenced through `road_marking` regulatory elements of the lane they lie on.
//! * Ids: lanes, boundaries used whole, stop lines and marks keep their element ids; new
//!   primitives are numbered above the largest element id. Output is byte-identical for the
//!   same layout and config.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use hdmap_core::nalgebra::Point3;
use hdmap_core::{ElementId, Issues, Lane, LaneKind, MarkKind, RoadLayout};
use hdmap_io::osm::{LineModel, Tags, lanelet_source_tags_agree, lanelet_tags};
use serde::{Deserialize, Serialize};

use crate::{ExportError, MapProjection};

/// How the layout becomes lanelets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lanelet2Config {
    /// Bound ends of a lane and its successor closer than this become one node (at their mean),
    /// metres. Extracted layouts leave lanes a dash gap apart where the line type changes.
    pub join_m: f64,
    /// `location` of lanelets whose source did not say.
    pub location: Location,
    /// Which consumers the file is for.
    pub flavour: Flavour,
}

/// Which Lanelet2 consumers a file is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    /// Autoware (lanelet2_extension): stop lines and arrows also referenced from their lanes
    /// through `road_marking` regulatory elements. Plain Lanelet2 does not know that rule and
    /// reports each such element as a load error (the map still loads).
    Autoware,
    /// Plain Lanelet2: the same map without `road_marking` regulatory elements.
    Lanelet2,
}

impl Lanelet2Config {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), ExportError> {
        if !(self.join_m.is_finite() && self.join_m >= 0.0) {
            return Err(ExportError::Layout(format!(
                "lanelet2.join_m = {}: must be a non-negative number of metres",
                self.join_m
            )));
        }
        Ok(())
    }
}

impl Default for Lanelet2Config {
    fn default() -> Self {
        Self { join_m: 3.0, location: Location::Urban, flavour: Flavour::Autoware }
    }
}

/// Lanelet2's `location` tag (selects speed rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// Inside towns.
    Urban,
    /// Outside towns.
    Nonurban,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lanelet2Summary {
    /// Nodes written.
    pub nodes: usize,
    /// Ways written.
    pub ways: usize,
    /// Lanelets written (lanes and crosswalks).
    pub lanelets: usize,
    /// Regulatory elements written.
    pub regulatory_elements: usize,
    /// Lane bounds cut from a longer boundary.
    pub cut_bounds: usize,
    /// Successor pairs whose bound ends could not be joined (Lanelet2 will not route through).
    pub unjoined_successors: Vec<(ElementId, ElementId)>,
    /// Lanes that share a bound way on the same side of it with another lane (a long lane beside
    /// a lane split in two: Lanelet2 wants lanelets cut where their neighbours are cut, and its
    /// routing graph reports these). Each pair once.
    pub overlapping_lanes: Vec<(ElementId, ElementId)>,
    /// Neighbours (same direction) whose shared line became different ways, because the lanes
    /// on its two sides end at different places: Lanelet2 sees no neighbour there.
    pub unshared_neighbours: Vec<(ElementId, ElementId)>,
    /// Largest distance between successor ends that were joined into one node, metres (each
    /// end moved half of it).
    pub max_join_m: f64,
}

/// A node before unification: a vertex of a boundary, or a cut point on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NodeKey {
    Vertex(ElementId, usize),
    /// Cut at arc length (millimetres) along the stored boundary.
    Cut(ElementId, i64),
    /// Vertex of a polygon-derived way (crosswalk sides, marks): element, index.
    Poly(ElementId, usize),
}

struct Way {
    id: i64,
    nodes: Vec<NodeKey>,
    tags: Vec<(String, String)>,
}

/// Union–find over node keys.
struct Nodes {
    keys: Vec<NodeKey>,
    pos: Vec<Point3<f64>>,
    index: BTreeMap<NodeKey, usize>,
    parent: Vec<usize>,
}

impl Nodes {
    fn new() -> Self {
        Self { keys: Vec::new(), pos: Vec::new(), index: BTreeMap::new(), parent: Vec::new() }
    }
    fn add(&mut self, key: NodeKey, p: Point3<f64>) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.keys.len();
        self.keys.push(key);
        self.pos.push(p);
        self.parent.push(i);
        self.index.insert(key, i);
        i
    }
    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            // The smaller index stays root: deterministic.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }
}

fn arc_lengths(p: &[Point3<f64>]) -> Vec<f64> {
    let mut s = vec![0.0];
    for w in p.windows(2) {
        s.push(s[s.len() - 1] + (w[1].xy() - w[0].xy()).norm());
    }
    s
}

/// Arc length of the foot of `q` on the polyline, and the distance to it (horizontal).
fn project(p: &[Point3<f64>], s: &[f64], q: &Point3<f64>) -> (f64, f64) {
    let mut best = (0.0, f64::INFINITY);
    for (i, w) in p.windows(2).enumerate() {
        let d = w[1].xy() - w[0].xy();
        let l2 = d.norm_squared();
        let u = if l2 > 0.0 { ((q.xy() - w[0].xy()).dot(&d) / l2).clamp(0.0, 1.0) } else { 0.0 };
        let foot = w[0].xy() + d * u;
        let dist = (q.xy() - foot).norm();
        if dist < best.1 {
            best = (s[i] + u * (s[i + 1] - s[i]), dist);
        }
    }
    best
}

fn point_at(p: &[Point3<f64>], s: &[f64], at: f64) -> Point3<f64> {
    for (i, w) in p.windows(2).enumerate() {
        if at <= s[i + 1] || i + 2 == p.len() {
            let l = s[i + 1] - s[i];
            let u = if l > 0.0 { ((at - s[i]) / l).clamp(0.0, 1.0) } else { 0.0 };
            return w[0] + (w[1] - w[0]) * u;
        }
    }
    p[0]
}

/// Whether a lane lies left of a bound's stored direction: right of its left bound and left of
/// its right bound in its own direction of travel.
fn lies_left(is_left_bound: bool, reversed: bool) -> bool {
    is_left_bound == reversed
}

fn mm(s: f64) -> i64 {
    (s * 1000.0).round() as i64
}

/// The node keys of the stored boundary between arc lengths `a` < `b` (millimetres).
fn piece_keys(id: ElementId, s: &[f64], a: i64, b: i64, len_mm: i64) -> Vec<NodeKey> {
    let end_key = |at: i64| -> NodeKey {
        if at == 0 {
            NodeKey::Vertex(id, 0)
        } else if at == len_mm {
            NodeKey::Vertex(id, s.len() - 1)
        } else {
            NodeKey::Cut(id, at)
        }
    };
    let mut v = vec![end_key(a)];
    for (i, si) in s.iter().enumerate() {
        let m = mm(*si);
        if m > a && m < b {
            v.push(NodeKey::Vertex(id, i));
        }
    }
    v.push(end_key(b));
    v
}

/// Autoware's `turn_direction` of an intersection lane from its heading change.
fn turn_direction(center: &[Point3<f64>]) -> &'static str {
    let n = center.len();
    if n < 3 {
        return "straight";
    }
    let h = |a: &Point3<f64>, b: &Point3<f64>| (b.y - a.y).atan2(b.x - a.x);
    let mut d = h(&center[n - 2], &center[n - 1]) - h(&center[0], &center[1]);
    while d > std::f64::consts::PI {
        d -= 2.0 * std::f64::consts::PI;
    }
    while d < -std::f64::consts::PI {
        d += 2.0 * std::f64::consts::PI;
    }
    if d.abs() < 30f64.to_radians() {
        "straight"
    } else if d > 0.0 {
        "left"
    } else {
        "right"
    }
}

/// Writes `layout` as a Lanelet2 OSM file (Autoware flavour) at `path`, atomically.
///
/// Findings the map can live with (a successor whose ends are too far apart to join, an arrow
/// on no lane) go to `issues`; an unprojectable origin or a lane whose boundary is missing is
/// an error naming the element.
pub fn write_lanelet2(
    path: &Path,
    layout: &RoadLayout,
    config: &Lanelet2Config,
    issues: &mut Issues,
) -> Result<Lanelet2Summary, ExportError> {
    config.validate()?;
    let proj = MapProjection::for_origin(&layout.origin)?;
    // New primitives take the smallest positive ids no element has (Lanelet2 ids are one
    // namespace; imported maps may use ids up to 2^63).
    let taken: BTreeSet<i64> = layout.geometries().iter().map(|g| g.1.0 as i64).collect();
    let mut next_id = 0i64;
    let mut new_id = || {
        next_id += 1;
        while taken.contains(&next_id) {
            next_id += 1;
        }
        next_id
    };
    let mut summary = Lanelet2Summary::default();
    let mut nodes = Nodes::new();

    // Boundaries and edges by id: points, arc lengths, canonical tags, source tags.
    struct Bound<'a> {
        points: &'a [Point3<f64>],
        s: Vec<f64>,
        model: LineModel,
    }
    let mut bounds: BTreeMap<ElementId, Bound<'_>> = BTreeMap::new();
    for b in &layout.lane_boundaries {
        bounds.insert(
            b.id,
            Bound { points: &b.points, s: arc_lengths(&b.points), model: LineModel::of_boundary(b) },
        );
    }
    for e in &layout.road_edges {
        bounds.insert(
            e.id,
            Bound { points: &e.points, s: arc_lengths(&e.points), model: LineModel::Edge(e.kind) },
        );
    }
    let way_tags = |id: ElementId, model: &LineModel| -> Vec<(String, String)> {
        let canonical: Vec<(String, String)> =
            model.tags().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(src) = layout.source_tags.get(&id) {
            let src_canonical: Vec<(String, String)> = LineModel::from_tags(src)
                .tags()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if src_canonical == canonical {
                return src.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            }
        }
        canonical
    };

    // 1. Each lane's extent along each of its two boundaries (stored direction, millimetres):
    //    the feet of its centre line's ends.
    struct LaneBounds {
        left: (ElementId, i64, i64, bool),
        right: (ElementId, i64, i64, bool),
    }
    let mut lane_bounds: Vec<LaneBounds> = Vec::new();
    // Extents by (boundary, whether the lane lies left of the boundary's stored direction).
    let mut extents: BTreeMap<(ElementId, bool), Vec<(i64, i64)>> = BTreeMap::new();
    for lane in &layout.lanes {
        let mut sides = Vec::new();
        for (is_left, r) in [(true, lane.left), (false, lane.right)] {
            let b = bounds.get(&r.id).ok_or_else(|| {
                ExportError::Layout(format!("lane {}: boundary {} is not in the layout", lane.id, r.id))
            })?;
            if b.points.len() < 2 || lane.center_line.len() < 2 {
                return Err(ExportError::Layout(format!(
                    "lane {}: boundary {} or centre line has < 2 points",
                    lane.id, r.id
                )));
            }
            let (c0, c1) = (&lane.center_line[0], &lane.center_line[lane.center_line.len() - 1]);
            let (a, e) = (mm(project(b.points, &b.s, c0).0), mm(project(b.points, &b.s, c1).0));
            let (a, e) = if a <= e { (a, e) } else { (e, a) };
            extents.entry((r.id, lies_left(is_left, r.reversed))).or_default().push((a, e));
            sides.push((r.id, a, e, r.reversed));
        }
        lane_bounds.push(LaneBounds { left: sides[0], right: sides[1] });
    }
    // The lanes on one side of a boundary form sections: extents overlapping by more than 1 m
    // (or half the shorter one) are one section (imported lanelets whose ends are skewed),
    // consecutive sections meet halfway between them, the first starts at the boundary's start
    // and the last ends at its end. A side with one section uses the boundary whole. The two
    // sides are cut independently (opposite lanes need not end together); where their sections
    // agree, neighbours across the line share the very same way.
    let mut section_of: BTreeMap<(ElementId, bool, i64, i64), (i64, i64)> = BTreeMap::new();
    for (&(id, side), ext) in &extents {
        let id = &id;
        let b = &bounds[id];
        let len_mm = mm(b.s[b.s.len() - 1]);
        let mut sorted = ext.clone();
        sorted.sort_by_key(|(a, e)| a + e);
        sorted.dedup();
        // (start, end, member extents) of each section.
        type Section = (i64, i64, Vec<(i64, i64)>);
        let mut groups: Vec<Section> = Vec::new();
        for (a, e) in sorted {
            if let Some(g) = groups.last_mut() {
                let overlap = g.1.min(e) - g.0.max(a);
                let shorter = (g.1 - g.0).min(e - a).max(1);
                if overlap > (shorter / 2).min(1000) {
                    g.0 = g.0.min(a);
                    g.1 = g.1.max(e);
                    g.2.push((a, e));
                    continue;
                }
            }
            groups.push((a, e, vec![(a, e)]));
        }
        let n = groups.len();
        let mut cuts = vec![0i64];
        for w in groups.windows(2) {
            cuts.push(((w[0].1 + w[1].0) / 2).clamp(0, len_mm));
        }
        cuts.push(len_mm);
        for (k, g) in groups.iter().enumerate() {
            let (lo, hi) = (cuts[k], cuts[k + 1]);
            let (lo, hi) = if hi > lo { (lo, hi) } else { (0, len_mm) };
            for m in &g.2 {
                section_of.insert((*id, side, m.0, m.1), if n == 1 { (0, len_mm) } else { (lo, hi) });
            }
        }
    }
    let section = |id: ElementId, side: bool, a: i64, e: i64| section_of[&(id, side, a, e)];

    // 2. Ways: one per (boundary, extent); whole boundaries keep their id.
    let mut ways: Vec<Way> = Vec::new();
    let mut way_of: BTreeMap<(ElementId, i64, i64), usize> = BTreeMap::new();
    let mut lane_ways: Vec<(usize, usize)> = Vec::new();
    for lb in &lane_bounds {
        let mut pair = [0usize; 2];
        for (k, (id, a, e, rev)) in [lb.left, lb.right].into_iter().enumerate() {
            let b = &bounds[&id];
            let len_mm = mm(b.s[b.s.len() - 1]);
            let (a, e) = section(id, lies_left(k == 0, rev), a, e);
            let idx = match way_of.get(&(id, a, e)) {
                Some(i) => *i,
                None => {
                    let whole = a == 0 && e == len_mm;
                    let keys = piece_keys(id, &b.s, a, e, len_mm);
                    for key in &keys {
                        let p = match key {
                            NodeKey::Vertex(_, i) => b.points[*i],
                            NodeKey::Cut(_, at) => point_at(b.points, &b.s, *at as f64 / 1000.0),
                            NodeKey::Poly(..) => continue,
                        };
                        nodes.add(*key, p);
                    }
                    if !whole {
                        summary.cut_bounds += 1;
                    }
                    ways.push(Way {
                        id: if whole { id.0 as i64 } else { new_id() },
                        nodes: keys,
                        tags: way_tags(id, &b.model),
                    });
                    way_of.insert((id, a, e), ways.len() - 1);
                    ways.len() - 1
                }
            };
            pair[k] = idx;
        }
        lane_ways.push((pair[0], pair[1]));
    }
    let lane_at: BTreeMap<ElementId, usize> =
        layout.lanes.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    for (li, lane) in layout.lanes.iter().enumerate() {
        // Each pair once: from the lane to its left neighbour.
        if let Some(n) = lane.left_neighbour
            && let Some(&ni) = lane_at.get(&n)
            && lane_ways[li].0 != lane_ways[ni].1
        {
            summary.unshared_neighbours.push((lane.id, n));
            issues.warn(
                format!("lane {}", lane.id),
                format!(
                    "left neighbour {n} ends elsewhere along their line: Lanelet2 sees no neighbour there"
                ),
            );
        }
    }
    // Two lanes on the same side of one way overlap: the model has a lane that Lanelet2 would
    // need cut where its neighbour is cut. Reported, not repaired.
    let mut on_side: BTreeMap<(usize, bool), Vec<ElementId>> = BTreeMap::new();
    for (li, lane) in layout.lanes.iter().enumerate() {
        let lb = &lane_bounds[li];
        // The lane lies right of its left bound and left of its right bound, in its direction.
        on_side.entry((lane_ways[li].0, lies_left(true, lb.left.3))).or_default().push(lane.id);
        on_side.entry((lane_ways[li].1, lies_left(false, lb.right.3))).or_default().push(lane.id);
    }
    for lanes in on_side.values().filter(|v| v.len() > 1) {
        for (k, a) in lanes.iter().enumerate() {
            for b in &lanes[k + 1..] {
                summary.overlapping_lanes.push((*a, *b));
                issues.warn(
                    format!("lane {a}"),
                    format!("shares a bound on the same side with lane {b}: Lanelet2's routing graph will report it"),
                );
            }
        }
    }
    // Boundaries and edges no lane uses, whole.
    let used: BTreeSet<ElementId> = way_of.keys().map(|k| k.0).collect();
    for (id, b) in &bounds {
        if used.contains(id) || b.points.len() < 2 {
            continue;
        }
        let keys: Vec<NodeKey> = (0..b.points.len()).map(|i| NodeKey::Vertex(*id, i)).collect();
        for (i, k) in keys.iter().enumerate() {
            nodes.add(*k, b.points[i]);
        }
        ways.push(Way { id: id.0 as i64, nodes: keys, tags: way_tags(*id, &b.model) });
    }

    // 3. Join: coincident way ends (1 mm), and the ends of successors within join_m.
    let end_of = |w: &Way, last: bool| if last { w.nodes[w.nodes.len() - 1] } else { w.nodes[0] };
    let mut cell: BTreeMap<(i64, i64, i64), Vec<usize>> = BTreeMap::new();
    for w in &ways {
        for last in [false, true] {
            let i = nodes.index[&end_of(w, last)];
            let p = nodes.pos[i];
            cell.entry((mm(p.x), mm(p.y), mm(p.z))).or_default().push(i);
        }
    }
    for v in cell.values() {
        for &i in &v[1..] {
            nodes.union(v[0], i);
        }
    }
    for (li, lane) in layout.lanes.iter().enumerate() {
        for s in &lane.successors {
            let Some(&si) = lane_at.get(s) else { continue };
            let oriented_end = |w: usize, rev: bool, last: bool| end_of(&ways[w], last != rev);
            let (lb, sb) = (&lane_bounds[li], &lane_bounds[si]);
            let pairs = [
                (
                    oriented_end(lane_ways[li].0, lb.left.3, true),
                    oriented_end(lane_ways[si].0, sb.left.3, false),
                ),
                (
                    oriented_end(lane_ways[li].1, lb.right.3, true),
                    oriented_end(lane_ways[si].1, sb.right.3, false),
                ),
            ];
            let gap = pairs
                .iter()
                .map(|(a, b)| (nodes.pos[nodes.index[a]] - nodes.pos[nodes.index[b]]).norm())
                .fold(0.0, f64::max);
            let collapses = pairs.iter().any(|(a, b)| {
                let (ra, rb) = (nodes.index[a], nodes.index[b]);
                let (ra, rb) = (nodes.root(ra), nodes.root(rb));
                ra != rb
                    && ways
                        .iter()
                        .any(|w| w.nodes.iter().all(|k| [ra, rb].contains(&nodes.root(nodes.index[k]))))
            });
            if gap <= config.join_m && !collapses {
                for (a, b) in pairs {
                    let (ia, ib) = (nodes.index[&a], nodes.index[&b]);
                    nodes.union(ia, ib);
                }
                summary.max_join_m = summary.max_join_m.max(gap);
            } else if collapses {
                summary.unjoined_successors.push((lane.id, *s));
                issues.warn(
                    format!("lane {}", lane.id),
                    format!("successor {s}: joining the ends would fold a bound shorter than {gap:.2} m: not joined"),
                );
            } else {
                summary.unjoined_successors.push((lane.id, *s));
                issues.warn(
                    format!("lane {}", lane.id),
                    format!("successor {s} starts more than {} m from its end: not joined", config.join_m),
                );
            }
        }
    }

    // 4. Crosswalks: lanelets between the polygon's two long sides.
    struct Extra {
        id: i64,
        left: usize,
        right: usize,
        tags: Vec<(String, String)>,
    }
    let mut extra_lanelets: Vec<Extra> = Vec::new();
    for c in &layout.crosswalks {
        let p = &c.polygon;
        if p.len() != 4 {
            issues.warn(
                format!("crosswalk {}", c.id),
                format!("{} corners, not 4: not written as a lanelet", p.len()),
            );
            continue;
        }
        let side = |i: usize, j: usize| (p[j].xy() - p[i].xy()).norm();
        // Sides (0,1)+(2,3) or (1,2)+(3,0): the longer pair are the bounds.
        let (a, b) = if side(0, 1) + side(2, 3) >= side(1, 2) + side(3, 0) {
            ((0, 1), (3, 2))
        } else {
            ((1, 2), (0, 3))
        };
        let mut ids = [0usize; 2];
        for (k, (i, j)) in [a, b].into_iter().enumerate() {
            let keys = vec![NodeKey::Poly(c.id, i), NodeKey::Poly(c.id, j)];
            nodes.add(keys[0], p[i]);
            nodes.add(keys[1], p[j]);
            ways.push(Way {
                id: new_id(),
                nodes: keys,
                tags: vec![("type".into(), "pedestrian_marking".into())],
            });
            ids[k] = ways.len() - 1;
        }
        let tags = vec![
            ("type".into(), "lanelet".into()),
            ("subtype".into(), "crosswalk".into()),
            ("location".into(), location(config.location).into()),
            ("one_way".into(), "no".into()),
            ("participant:pedestrian".into(), "yes".into()),
        ];
        extra_lanelets.push(Extra { id: c.id.0 as i64, left: ids[0], right: ids[1], tags });
    }

    // 5. Stop lines and arrows, referenced through road_marking regulatory elements.
    // (id, members (role, way id), tags)
    type RegElem = (i64, Vec<(&'static str, i64)>, Vec<(String, String)>);
    let mut reg_elems: Vec<RegElem> = Vec::new();
    let mut lane_regs: BTreeMap<ElementId, Vec<i64>> = BTreeMap::new();
    let mut stop_way: BTreeMap<ElementId, i64> = BTreeMap::new();
    for s in &layout.stop_lines {
        if s.points.len() < 2 {
            continue;
        }
        let keys: Vec<NodeKey> = (0..s.points.len()).map(|i| NodeKey::Poly(s.id, i)).collect();
        for (i, k) in keys.iter().enumerate() {
            nodes.add(*k, s.points[i]);
        }
        let tags = match layout.source_tags.get(&s.id) {
            Some(src) if src.get("type").map(String::as_str) == Some("stop_line") => {
                src.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            _ => vec![("type".into(), "stop_line".into())],
        };
        ways.push(Way { id: s.id.0 as i64, nodes: keys, tags });
        stop_way.insert(s.id, s.id.0 as i64);
    }
    for lane in &layout.lanes {
        if let Some(s) = lane.stop_line
            && let Some(&w) = stop_way.get(&s)
            && config.flavour == Flavour::Autoware
        {
            let rid = new_id();
            reg_elems.push((rid, vec![("refers", w)], road_marking_tags()));
            lane_regs.entry(lane.id).or_default().push(rid);
        }
    }
    // (lane, centre line, its arc lengths) of the lanes vehicles drive in.
    type Centre<'a> = (ElementId, &'a [Point3<f64>], Vec<f64>);
    let vehicle_centres: Vec<Centre<'_>> = layout
        .lanes
        .iter()
        .filter(|l| l.kind.is_vehicle_lane())
        .map(|l| (l.id, l.center_line.as_slice(), arc_lengths(&l.center_line)))
        .collect();
    for m in &layout.surface_marks {
        let MarkKind::Arrow(kind) = m.kind else { continue };
        if m.polygon.len() < 3 {
            continue;
        }
        let n = m.polygon.len() as f64;
        let c = m.polygon.iter().fold(Point3::origin(), |a, p| a + p.coords / n);
        // The lane whose centre line passes closest (within 2 m) to the arrow's centre.
        let on = vehicle_centres
            .iter()
            .map(|(id, line, s)| (project(line, s, &c).1, *id))
            .filter(|(d, _)| *d < 2.0)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let mut keys: Vec<NodeKey> = (0..m.polygon.len()).map(|i| NodeKey::Poly(m.id, i)).collect();
        for (i, k) in keys.iter().enumerate() {
            nodes.add(*k, m.polygon[i]);
        }
        keys.push(keys[0]);
        ways.push(Way {
            id: m.id.0 as i64,
            nodes: keys,
            tags: vec![
                ("type".into(), "arrow".into()),
                ("subtype".into(), kind.name().into()),
                ("area".into(), "yes".into()),
            ],
        });
        match on {
            Some(_) if config.flavour == Flavour::Lanelet2 => {}
            Some((_, lane)) => {
                let rid = new_id();
                reg_elems.push((rid, vec![("refers", m.id.0 as i64)], road_marking_tags()));
                lane_regs.entry(lane).or_default().push(rid);
            }
            None => {
                issues.info(format!("surface_mark {}", m.id), "arrow on no lane: written without a lanelet")
            }
        }
    }

    // 6. Node ids and positions: one per union root, numbered in first-use order.
    let mut node_id: BTreeMap<usize, i64> = BTreeMap::new();
    let mut order: Vec<usize> = Vec::new();
    for w in &ways {
        for k in &w.nodes {
            let i = nodes.index[k];
            let r = nodes.root(i);
            if let std::collections::btree_map::Entry::Vacant(e) = node_id.entry(r) {
                e.insert(new_id());
                order.push(r);
            }
        }
    }
    let mut sum: BTreeMap<usize, (Point3<f64>, f64)> = BTreeMap::new();
    for i in 0..nodes.keys.len() {
        let r = nodes.root(i);
        let e = sum.entry(r).or_insert((Point3::origin(), 0.0));
        e.0 += nodes.pos[i].coords;
        e.1 += 1.0;
    }
    let node_pos: Vec<Point3<f64>> = order.iter().map(|r| sum[r].0 / sum[r].1).collect();
    let xy: Vec<[f64; 2]> = node_pos.iter().map(|p| [p.x, p.y]).collect();
    let lat_lon = proj.to_lat_lon(&xy)?;
    let mut local = xy.clone();
    proj.to_local(&mut local)?;

    // 7. The XML.
    let mut out = String::with_capacity(256 * (order.len() + ways.len()));
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<osm version=\"0.6\" generator=\"hdmap\">\n");
    for (k, r) in order.iter().enumerate() {
        let [lat, lon] = lat_lon[k];
        if !(lat.is_finite() && lon.is_finite()) {
            return Err(ExportError::Projection(format!(
                "a node at {:?} does not project to WGS84",
                node_pos[k]
            )));
        }
        let _ = writeln!(
            out,
            "  <node id=\"{}\" visible=\"true\" version=\"1\" lat=\"{lat:.11}\" lon=\"{lon:.11}\">",
            node_id[r]
        );
        let _ = writeln!(out, "    <tag k=\"ele\" v=\"{:.4}\"/>", node_pos[k].z);
        let _ = writeln!(out, "    <tag k=\"local_x\" v=\"{:.4}\"/>", local[k][0]);
        let _ = writeln!(out, "    <tag k=\"local_y\" v=\"{:.4}\"/>", local[k][1]);
        out.push_str("  </node>\n");
    }
    for w in &ways {
        let mut refs: Vec<i64> = Vec::with_capacity(w.nodes.len());
        for k in &w.nodes {
            let i = nodes.index[k];
            let id = node_id[&nodes.root(i)];
            if refs.last() != Some(&id) {
                refs.push(id);
            }
        }
        if refs.len() < 2 {
            return Err(ExportError::Layout(format!(
                "way {} collapses to one node after joining successor ends (join_m {} m is longer than the line)",
                w.id, config.join_m
            )));
        }
        let _ = writeln!(out, "  <way id=\"{}\" visible=\"true\" version=\"1\">", w.id);
        for r in refs {
            let _ = writeln!(out, "    <nd ref=\"{r}\"/>");
        }
        write_tags(&mut out, &w.tags);
        out.push_str("  </way>\n");
    }
    for (rid, members, tags) in &reg_elems {
        let _ = writeln!(out, "  <relation id=\"{rid}\" visible=\"true\" version=\"1\">");
        for (role, r) in members {
            let _ = writeln!(out, "    <member type=\"way\" ref=\"{r}\" role=\"{role}\"/>");
        }
        write_tags(&mut out, tags);
        out.push_str("  </relation>\n");
    }
    for (li, lane) in layout.lanes.iter().enumerate() {
        let (l, r) = lane_ways[li];
        let regs = lane_regs.get(&lane.id).cloned().unwrap_or_default();
        let tags = lane_tags(lane, layout.source_tags.get(&lane.id), config.location);
        write_lanelet(&mut out, lane.id.0 as i64, ways[l].id, ways[r].id, &regs, &tags);
    }
    for e in &extra_lanelets {
        write_lanelet(&mut out, e.id, ways[e.left].id, ways[e.right].id, &[], &e.tags);
    }
    out.push_str("</osm>\n");

    hdmap_io::fsutil::write_bytes_atomic(path, out.as_bytes())?;
    summary.nodes = order.len();
    summary.ways = ways.len();
    summary.lanelets = layout.lanes.len() + extra_lanelets.len();
    summary.regulatory_elements = reg_elems.len();
    Ok(summary)
}

fn location(l: Location) -> &'static str {
    match l {
        Location::Urban => "urban",
        Location::Nonurban => "nonurban",
    }
}

fn road_marking_tags() -> Vec<(String, String)> {
    vec![("type".into(), "regulatory_element".into()), ("subtype".into(), "road_marking".into())]
}

/// A lane's lanelet tags: its imported tags when they still say what the lane says, else the
/// canonical ones (plus `location`, and `turn_direction` inside intersections).
fn lane_tags(lane: &Lane, source: Option<&Tags>, loc: Location) -> Vec<(String, String)> {
    if let Some(src) = source
        && lanelet_source_tags_agree(lane, src)
    {
        let mut t: Vec<(String, String)> = src.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !src.contains_key("type") {
            t.push(("type".into(), "lanelet".into()));
        }
        return t;
    }
    let mut t: Vec<(String, String)> = vec![("type".into(), "lanelet".into())];
    t.extend(lanelet_tags(lane).into_iter().map(|(k, v)| (k.to_string(), v)));
    t.push(("location".into(), location(loc).into()));
    if let Some(src) = source {
        // Participant and other untyped tags survive an edit of the typed ones.
        for (k, v) in src {
            if !matches!(k.as_str(), "type" | "subtype" | "one_way" | "location") {
                t.push((k.clone(), v.clone()));
            }
        }
    }
    if lane.in_intersection && lane.kind == LaneKind::Road && !t.iter().any(|(k, _)| k == "turn_direction") {
        t.push(("turn_direction".into(), turn_direction(&lane.center_line).into()));
    }
    t
}

fn write_lanelet(out: &mut String, id: i64, left: i64, right: i64, regs: &[i64], tags: &[(String, String)]) {
    let _ = writeln!(out, "  <relation id=\"{id}\" visible=\"true\" version=\"1\">");
    let _ = writeln!(out, "    <member type=\"way\" ref=\"{left}\" role=\"left\"/>");
    let _ = writeln!(out, "    <member type=\"way\" ref=\"{right}\" role=\"right\"/>");
    for r in regs {
        let _ = writeln!(out, "    <member type=\"relation\" ref=\"{r}\" role=\"regulatory_element\"/>");
    }
    write_tags(out, tags);
    out.push_str("  </relation>\n");
}

fn write_tags(out: &mut String, tags: &[(String, String)]) {
    for (k, v) in tags {
        let _ = writeln!(
            out,
            "    <tag k=\"{}\" v=\"{}\"/>",
            quick_xml::escape::escape(k.as_str()),
            quick_xml::escape::escape(v.as_str())
        );
    }
}
