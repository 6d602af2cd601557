//! The vector road model: typed elements with stable ids, 3D geometry in a declared CRS.
//!
//! All coordinates are absolute CRS coordinates (`origin.epsg`), heights in
//! `origin.vertical_datum`. Polylines run in the direction of travel of the lane they bound
//! where that is defined.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use nalgebra::Point3;
use serde::{Deserialize, Serialize};

use crate::{GeoOrigin, Issues};

/// A stable element id, unique across all element kinds of one layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ElementId(pub u64);

impl fmt::Display for ElementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Paint pattern of a lane boundary, seen in its direction (left line first for doubles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    /// One solid line: no lane change.
    Solid,
    /// One dashed line: lane change allowed both ways.
    Dashed,
    /// Two solid lines (e.g. the yellow centre line).
    DoubleSolid,
    /// Two dashed lines.
    DoubleDashed,
    /// Dashed on the left, solid on the right (change allowed from the left lane only).
    DashedSolid,
    /// Solid on the left, dashed on the right (change allowed from the right lane only).
    SolidDashed,
    /// No paint: a boundary inferred where markings are missing (e.g. through an intersection).
    Virtual,
}

impl LineType {
    /// Whether a vehicle in the lane to the left of this boundary may cross it to the right,
    /// and whether one on the right may cross to the left.
    pub fn crossing_allowed(self) -> (bool, bool) {
        match self {
            LineType::Solid | LineType::DoubleSolid => (false, false),
            LineType::Dashed | LineType::DoubleDashed | LineType::Virtual => (true, true),
            // The dashed side is the side you may cross from.
            LineType::DashedSolid => (true, false),
            LineType::SolidDashed => (false, true),
        }
    }
}

/// Paint colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkingColor {
    /// White (lane lines, stop lines, crosswalks).
    White,
    /// Yellow (centre lines separating opposite directions).
    Yellow,
    /// Blue (bus lanes in Korea).
    Blue,
}

/// Dash pattern: `paint_m` of paint followed by `gap_m` of gap, starting `phase_m` into a period
/// at the first vertex.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DashPattern {
    /// Length of one painted dash, metres.
    pub paint_m: f64,
    /// Length of one gap, metres.
    pub gap_m: f64,
    /// Offset into the paint+gap period at the first vertex, metres.
    pub phase_m: f64,
}

/// A painted (or virtual) line separating lanes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaneBoundary {
    /// Stable id.
    pub id: ElementId,
    /// Paint pattern.
    pub line_type: LineType,
    /// Paint colour.
    pub color: MarkingColor,
    /// Width of one painted line, metres (0.15 m is Korean urban practice).
    pub width_m: f64,
    /// Dash pattern for dashed types.
    pub dash: Option<DashPattern>,
    /// Centre line of the paint, CRS coordinates.
    pub points: Vec<Point3<f64>>,
}

/// Kind of a road edge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// A kerb stone of the given height above the road, metres.
    Curb {
        /// Kerb height, metres.
        height_m: f64,
    },
    /// The edge of the paved surface without a kerb.
    RoadBorder,
    /// A fence.
    Fence,
    /// A wall (building or retaining wall) at the road's side.
    Wall,
    /// A guard rail.
    GuardRail,
}

/// The physical edge of the road.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoadEdge {
    /// Stable id.
    pub id: ElementId,
    /// Kerb or border.
    pub kind: EdgeKind,
    /// Edge polyline, CRS coordinates.
    pub points: Vec<Point3<f64>>,
}

/// The centre line of a road (its carriageway, all lanes of both directions): the road-level
/// network, as in road-graph datasets (SpaceNet, OpenStreetMap).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoadCenterline {
    /// Stable id.
    pub id: ElementId,
    /// Centre line, CRS coordinates.
    pub points: Vec<Point3<f64>>,
}

/// A stop line across one or more lanes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopLine {
    /// Stable id.
    pub id: ElementId,
    /// Paint width along the direction of travel, metres.
    pub width_m: f64,
    /// Centre line of the paint across the road, CRS coordinates.
    pub points: Vec<Point3<f64>>,
}

/// A zebra crosswalk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crosswalk {
    /// Stable id.
    pub id: ElementId,
    /// Outer ring (not closed: first vertex is not repeated), CRS coordinates.
    pub polygon: Vec<Point3<f64>>,
    /// Stripe width, metres.
    pub stripe_m: f64,
    /// Gap between stripes, metres.
    pub gap_m: f64,
}

/// Kind of a painted arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrowKind {
    /// Straight ahead.
    Straight,
    /// Left turn.
    Left,
    /// Right turn.
    Right,
    /// Straight or left.
    StraightLeft,
    /// Straight or right.
    StraightRight,
    /// Left or right.
    LeftRight,
    /// U-turn.
    UTurn,
}

impl ArrowKind {
    /// The snake_case name (as serialized; also Lanelet2's `arrow` subtype).
    pub fn name(self) -> &'static str {
        match self {
            ArrowKind::Straight => "straight",
            ArrowKind::Left => "left",
            ArrowKind::Right => "right",
            ArrowKind::StraightLeft => "straight_left",
            ArrowKind::StraightRight => "straight_right",
            ArrowKind::LeftRight => "left_right",
            ArrowKind::UTurn => "u_turn",
        }
    }
}

/// Kind of a surface mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// A direction arrow.
    Arrow(ArrowKind),
    /// Crosswalk-ahead diamond.
    CrosswalkAhead,
    /// Painted text (e.g. "천천히" / SLOW), with the text when known.
    Text(String),
    /// Speed bump paint.
    SpeedBump,
    /// Anything else, with a free description.
    Other(String),
}

/// A painted symbol on the road surface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceMark {
    /// Stable id.
    pub id: ElementId,
    /// What it is.
    pub kind: MarkKind,
    /// Outline (not closed), CRS coordinates.
    pub polygon: Vec<Point3<f64>>,
}

/// What a lane is for (Lanelet2's lanelet subtypes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneKind {
    /// A lane of an ordinary road.
    #[default]
    Road,
    /// A lane of a motorway.
    Highway,
    /// A bus lane.
    BusLane,
    /// A bicycle lane.
    BicycleLane,
    /// An emergency lane.
    EmergencyLane,
    /// A play street (pedestrians and vehicles share it).
    PlayStreet,
    /// A motorway exit.
    Exit,
    /// A pedestrian walkway.
    Walkway,
    /// A walkway shared with cyclists.
    SharedWalkway,
    /// A pedestrian crossing the road (its boundaries are the crosswalk's sides).
    Crosswalk,
    /// Stairs.
    Stairs,
    /// A rail track (trams).
    Rail,
}

impl LaneKind {
    /// Whether vehicles drive in it (roads, motorways, bus and emergency lanes, exits).
    pub fn is_vehicle_lane(self) -> bool {
        matches!(
            self,
            LaneKind::Road | LaneKind::Highway | LaneKind::BusLane | LaneKind::EmergencyLane | LaneKind::Exit
        )
    }
}

/// A reference to a boundary, with whether its points run against the lane's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundaryRef {
    /// The boundary's id.
    pub id: ElementId,
    /// True when the boundary's points run opposite to the lane's direction of travel.
    pub reversed: bool,
}

/// A lane: the drivable strip between two boundaries, with topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    /// Stable id.
    pub id: ElementId,
    /// Left boundary (in the direction of travel).
    pub left: BoundaryRef,
    /// Right boundary.
    pub right: BoundaryRef,
    /// Centre line in the direction of travel, CRS coordinates.
    pub center_line: Vec<Point3<f64>>,
    /// Lanes one may drive into at the end of this lane.
    pub successors: Vec<ElementId>,
    /// Adjacent lane on the left with the same direction, if any.
    pub left_neighbour: Option<ElementId>,
    /// Adjacent lane on the right with the same direction, if any.
    pub right_neighbour: Option<ElementId>,
    /// Stop line at the end of the lane, if any.
    pub stop_line: Option<ElementId>,
    /// True for lanes inside an intersection (virtual boundaries, no paint).
    pub in_intersection: bool,
    /// What the lane is for.
    #[serde(default)]
    pub kind: LaneKind,
    /// True when the lane may be used in both directions (walkways, crosswalks).
    #[serde(default)]
    pub bidirectional: bool,
}

/// The road layout of an area: every element kind in one declared CRS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoadLayout {
    /// CRS, map origin and vertical datum of all coordinates.
    pub origin: GeoOrigin,
    /// Lane lines.
    pub lane_boundaries: Vec<LaneBoundary>,
    /// Kerbs and road borders.
    pub road_edges: Vec<RoadEdge>,
    /// Road centre lines.
    #[serde(default)]
    pub road_centerlines: Vec<RoadCenterline>,
    /// Stop lines.
    pub stop_lines: Vec<StopLine>,
    /// Zebra crosswalks.
    pub crosswalks: Vec<Crosswalk>,
    /// Arrows and other surface marks.
    pub surface_marks: Vec<SurfaceMark>,
    /// Lanes with topology.
    pub lanes: Vec<Lane>,
    /// Attributes an imported element carried that the model does not type (e.g. a Lanelet2
    /// way's `type`/`subtype` tags or a lanelet's `participant:*` tags), by element id. Writers
    /// of the same format write them back where the typed fields still mean the same.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_tags: BTreeMap<ElementId, BTreeMap<String, String>>,
}

impl RoadLayout {
    /// An empty layout in the given CRS/origin.
    pub fn new(origin: GeoOrigin) -> Self {
        Self {
            origin,
            lane_boundaries: Vec::new(),
            road_edges: Vec::new(),
            road_centerlines: Vec::new(),
            stop_lines: Vec::new(),
            crosswalks: Vec::new(),
            surface_marks: Vec::new(),
            lanes: Vec::new(),
            source_tags: BTreeMap::new(),
        }
    }

    /// Total number of elements.
    pub fn element_count(&self) -> usize {
        self.lane_boundaries.len()
            + self.road_edges.len()
            + self.road_centerlines.len()
            + self.stop_lines.len()
            + self.crosswalks.len()
            + self.surface_marks.len()
            + self.lanes.len()
    }

    /// The polyline of a lane's boundary: a lane boundary's or a road edge's points (as stored,
    /// not turned to the lane's direction), or `None` when the id is neither.
    pub fn boundary_points(&self, id: ElementId) -> Option<&[Point3<f64>]> {
        self.lane_boundaries
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.points.as_slice())
            .or_else(|| self.road_edges.iter().find(|e| e.id == id).map(|e| e.points.as_slice()))
    }

    /// Every (kind, id, geometry) in a stable order.
    pub fn geometries(&self) -> Vec<(&'static str, ElementId, &[Point3<f64>])> {
        let mut out: Vec<(&'static str, ElementId, &[Point3<f64>])> = Vec::new();
        out.extend(self.lane_boundaries.iter().map(|e| ("lane_boundary", e.id, e.points.as_slice())));
        out.extend(self.road_edges.iter().map(|e| ("road_edge", e.id, e.points.as_slice())));
        out.extend(self.road_centerlines.iter().map(|e| ("road_centerline", e.id, e.points.as_slice())));
        out.extend(self.stop_lines.iter().map(|e| ("stop_line", e.id, e.points.as_slice())));
        out.extend(self.crosswalks.iter().map(|e| ("crosswalk", e.id, e.polygon.as_slice())));
        out.extend(self.surface_marks.iter().map(|e| ("surface_mark", e.id, e.polygon.as_slice())));
        out.extend(self.lanes.iter().map(|e| ("lane", e.id, e.center_line.as_slice())));
        out
    }

    /// Checks the layout's invariants and records every violation in `issues`: unique ids,
    /// references that resolve to the right kind, enough vertices, finite coordinates, dash
    /// patterns only on dashed lines. Returns the number of error-level findings added.
    pub fn validate(&self, issues: &mut Issues) -> usize {
        let before = issues.count_at_least(crate::Severity::Error);
        let mut kinds: BTreeMap<ElementId, &'static str> = BTreeMap::new();
        for (kind, id, pts) in self.geometries() {
            let element = format!("{kind} {id}");
            if let Some(prev) = kinds.insert(id, kind) {
                issues.error(&element, format!("id also used by a {prev}"));
            }
            let min = match kind {
                "crosswalk" | "surface_mark" => 3,
                _ => 2,
            };
            if pts.len() < min {
                issues.error(&element, format!("{} vertices, need at least {min}", pts.len()));
            }
            if pts.iter().any(|p| !p.coords.iter().all(|c| c.is_finite())) {
                issues.error(&element, "non-finite coordinate");
            }
        }
        for b in &self.lane_boundaries {
            let dashed = matches!(
                b.line_type,
                LineType::Dashed | LineType::DoubleDashed | LineType::DashedSolid | LineType::SolidDashed
            );
            match (&b.dash, dashed) {
                (Some(_), false) => {
                    issues.warn(format!("lane_boundary {}", b.id), "dash pattern on a non-dashed line")
                }
                (Some(d), true) if d.paint_m <= 0.0 || d.gap_m <= 0.0 => {
                    issues.error(format!("lane_boundary {}", b.id), "dash pattern with non-positive length")
                }
                _ => {}
            }
        }
        let lane_ids: BTreeSet<ElementId> = self.lanes.iter().map(|l| l.id).collect();
        for l in &self.lanes {
            let element = format!("lane {}", l.id);
            for (side, r) in [("left", l.left), ("right", l.right)] {
                if !matches!(kinds.get(&r.id), Some(&"lane_boundary" | &"road_edge")) {
                    issues.error(
                        &element,
                        format!("{side} boundary {} is not a lane boundary or road edge", r.id),
                    );
                }
            }
            for s in &l.successors {
                if !lane_ids.contains(s) {
                    issues.error(&element, format!("successor {s} is not a lane"));
                }
            }
            for (side, n) in [("left", l.left_neighbour), ("right", l.right_neighbour)] {
                if let Some(n) = n
                    && !lane_ids.contains(&n)
                {
                    issues.error(&element, format!("{side} neighbour {n} is not a lane"));
                }
            }
            if let Some(s) = l.stop_line
                && kinds.get(&s) != Some(&"stop_line")
            {
                issues.error(&element, format!("stop line {s} is not a stop line"));
            }
        }
        issues.count_at_least(crate::Severity::Error) - before
    }
}

/// Outline of a painted arrow in (u along travel, v to the left) metres, tail at u = 0, tip at
/// u = 5 (Korean-practice proportions: 0.3 m shaft, 0.9 m head; turn heads 0.7 m long).
/// Used to paint arrows (simulator) and to recognise them (layout extraction).
pub fn arrow_glyph(kind: ArrowKind) -> Vec<[f64; 2]> {
    let straight =
        vec![[0.0, -0.15], [3.5, -0.15], [3.5, -0.45], [5.0, 0.0], [3.5, 0.45], [3.5, 0.15], [0.0, 0.15]];
    let left = vec![
        [0.0, -0.15],
        [3.0, -0.15],
        [3.0, 0.9],
        [3.35, 0.9],
        [2.85, 1.6],
        [2.35, 0.9],
        [2.7, 0.9],
        [2.7, 0.15],
        [0.0, 0.15],
    ];
    let straight_left = vec![
        [0.0, -0.15],
        [3.5, -0.15],
        [3.5, -0.45],
        [5.0, 0.0],
        [3.5, 0.45],
        [3.5, 0.15],
        [2.5, 0.15],
        [2.5, 0.9],
        [2.85, 0.9],
        [2.35, 1.6],
        [1.85, 0.9],
        [2.2, 0.9],
        [2.2, 0.15],
        [0.0, 0.15],
    ];
    let mirror = |g: Vec<[f64; 2]>| -> Vec<[f64; 2]> { g.into_iter().rev().map(|p| [p[0], -p[1]]).collect() };
    match kind {
        ArrowKind::Straight => straight,
        ArrowKind::Left => left,
        ArrowKind::Right => mirror(left),
        ArrowKind::StraightLeft => straight_left,
        ArrowKind::StraightRight => mirror(straight_left),
        ArrowKind::LeftRight | ArrowKind::UTurn => straight,
    }
}

/// Paint outlines implied by a layout, in the horizontal plane of its CRS: dashes cut by their
/// [`DashPattern`], solid and double lines as strips of `width_m` (doubles: two strips
/// `double_gap_m` apart), stop lines as strips, crosswalk and surface-mark polygons as given.
/// Virtual boundaries have no paint. Each outline comes with the id of its element.
///
/// `double_gap_m` is the gap between the two lines of a double line (the model stores one line
/// width; Korean practice is 0.10–0.15 m).
pub fn paint_polygons(layout: &RoadLayout, double_gap_m: f64) -> Vec<(ElementId, Vec<[f64; 2]>)> {
    let mut out = Vec::new();
    for b in &layout.lane_boundaries {
        out.extend(boundary_paint(b, double_gap_m).into_iter().map(|r| (b.id, r)));
    }
    for s in &layout.stop_lines {
        let xy: Vec<[f64; 2]> = s.points.iter().map(|p| [p.x, p.y]).collect();
        if xy.len() >= 2 {
            out.push((s.id, strip_polygon(&xy, 0.0, s.width_m)));
        }
    }
    for c in &layout.crosswalks {
        out.push((c.id, c.polygon.iter().map(|p| [p.x, p.y]).collect()));
    }
    for m in &layout.surface_marks {
        out.push((m.id, m.polygon.iter().map(|p| [p.x, p.y]).collect()));
    }
    out
}

/// Paint outlines of one lane boundary (see [`paint_polygons`]): none for virtual lines.
pub fn boundary_paint(b: &LaneBoundary, double_gap_m: f64) -> Vec<Vec<[f64; 2]>> {
    let xy: Vec<[f64; 2]> = b.points.iter().map(|p| [p.x, p.y]).collect();
    if xy.len() < 2 {
        return Vec::new();
    }
    let double = matches!(
        b.line_type,
        LineType::DoubleSolid | LineType::DoubleDashed | LineType::DashedSolid | LineType::SolidDashed
    );
    let offsets: Vec<f64> = if double {
        vec![-(b.width_m + double_gap_m) / 2.0, (b.width_m + double_gap_m) / 2.0]
    } else {
        vec![0.0]
    };
    let ranges: Vec<(f64, f64)> = match (b.line_type, b.dash) {
        (LineType::Virtual, _) => return Vec::new(),
        (LineType::Dashed | LineType::DoubleDashed, Some(d)) => {
            let len = polyline_length(&xy);
            let period = d.paint_m + d.gap_m;
            let mut v = Vec::new();
            let mut start = -d.phase_m;
            while start < len {
                let (a, e) = (start.max(0.0), (start + d.paint_m).min(len));
                if e - a > 1e-6 {
                    v.push((a, e));
                }
                start += period;
            }
            v
        }
        _ => vec![(0.0, polyline_length(&xy))],
    };
    let mut out = Vec::new();
    for (a, e) in ranges {
        let piece = sub_polyline(&xy, a, e);
        for off in &offsets {
            out.push(strip_polygon(&piece, *off, b.width_m));
        }
    }
    out
}

fn polyline_length(p: &[[f64; 2]]) -> f64 {
    p.windows(2).map(|w| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1])).sum()
}

/// The part of a polyline between arc lengths `a` and `b`.
fn sub_polyline(p: &[[f64; 2]], a: f64, b: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    let mut s = 0.0;
    for w in p.windows(2) {
        let l = (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
        let at = |u: f64| [w[0][0] + (w[1][0] - w[0][0]) * u, w[0][1] + (w[1][1] - w[0][1]) * u];
        if l > 0.0 && s + l >= a && s <= b {
            if out.is_empty() {
                out.push(at(((a - s) / l).clamp(0.0, 1.0)));
            }
            if s + l <= b {
                out.push(w[1]);
            } else {
                out.push(at(((b - s) / l).clamp(0.0, 1.0)));
                break;
            }
        }
        s += l;
    }
    out
}

/// A strip of `width` centred `offset` to the left of a polyline.
fn strip_polygon(p: &[[f64; 2]], offset: f64, width: f64) -> Vec<[f64; 2]> {
    let n = p.len();
    let normal = |i: usize| {
        let (a, b) = (p[i.saturating_sub(1)], p[(i + 1).min(n - 1)]);
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let l = dx.hypot(dy).max(1e-12);
        [-dy / l, dx / l]
    };
    let side = |d: f64| -> Vec<[f64; 2]> {
        (0..n).map(|i| [p[i][0] + normal(i)[0] * d, p[i][1] + normal(i)[1] * d]).collect()
    };
    let mut ring = side(offset - width / 2.0);
    let mut other = side(offset + width / 2.0);
    other.reverse();
    ring.extend(other);
    ring
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VerticalDatum;

    #[test]
    fn dashes_follow_the_pattern() {
        let mut l = layout();
        l.lanes.clear();
        l.lane_boundaries.truncate(1);
        l.lane_boundaries[0].dash = Some(DashPattern { paint_m: 3.0, gap_m: 5.0, phase_m: 1.0 });
        let polys = paint_polygons(&l, 0.12);
        // 50.0025 m line, phase 1 m into the period: dashes at [0,2], [7,10], ..., [47,50].
        assert_eq!(polys.len(), 7);
        let xs: Vec<f64> = polys.iter().map(|(_, r)| r[0][0]).collect();
        assert!((xs[0] - 0.0).abs() < 1e-9 && (xs[1] - 7.0).abs() < 1e-3, "{xs:?}");
        let ys: Vec<f64> = polys[1].1.iter().map(|p| p[1]).collect();
        assert!(ys.iter().all(|y| (y.abs() - 0.075).abs() < 1e-9));
    }

    fn line(id: u64, y: f64) -> LaneBoundary {
        LaneBoundary {
            id: ElementId(id),
            line_type: LineType::Dashed,
            color: MarkingColor::White,
            width_m: 0.15,
            dash: Some(DashPattern { paint_m: 3.0, gap_m: 5.0, phase_m: 0.0 }),
            points: vec![Point3::new(0.0, y, 10.0), Point3::new(50.0, y, 10.5)],
        }
    }

    fn layout() -> RoadLayout {
        let origin = GeoOrigin::new(5186, [0.0, 0.0, 0.0], VerticalDatum::Kngeoid18).expect("finite");
        let mut l = RoadLayout::new(origin);
        l.lane_boundaries = vec![line(1, 0.0), line(2, 3.25)];
        l.lanes.push(Lane {
            id: ElementId(10),
            left: BoundaryRef { id: ElementId(2), reversed: false },
            right: BoundaryRef { id: ElementId(1), reversed: false },
            center_line: vec![Point3::new(0.0, 1.625, 10.0), Point3::new(50.0, 1.625, 10.5)],
            successors: vec![],
            left_neighbour: None,
            right_neighbour: None,
            stop_line: None,
            in_intersection: false,
            kind: LaneKind::Road,
            bidirectional: false,
        });
        l
    }

    #[test]
    fn valid_layout_has_no_issues_and_round_trips_through_json() {
        let l = layout();
        let mut issues = Issues::new();
        assert_eq!(l.validate(&mut issues), 0, "{issues:?}");
        let json = serde_json::to_string(&l).expect("serialize");
        let back: RoadLayout = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, l);
    }

    #[test]
    fn broken_references_and_duplicate_ids_are_reported() {
        let mut l = layout();
        l.lanes[0].successors.push(ElementId(99));
        l.lanes[0].left.id = ElementId(10); // a lane, not a boundary
        l.lane_boundaries[1].id = ElementId(1); // duplicate
        l.lane_boundaries[0].points.truncate(1);
        let mut issues = Issues::new();
        let errors = l.validate(&mut issues);
        let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        assert_eq!(errors, 4, "{text:#?}");
    }

    #[test]
    fn crossing_rules_follow_the_dashed_side() {
        assert_eq!(LineType::DashedSolid.crossing_allowed(), (true, false));
        assert_eq!(LineType::SolidDashed.crossing_allowed(), (false, true));
        assert_eq!(LineType::DoubleSolid.crossing_allowed(), (false, false));
    }
}
