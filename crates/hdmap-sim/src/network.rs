//! The road network and everything painted or paved on it: reference lines, lanes, paint,
//! kerbs, sidewalks, junction boxes, cul-de-sacs — and the ground-truth [`RoadLayout`].
//!
//! Conventions: local metric coordinates (x east, y north) around the config's origin. A road's
//! reference line is its centre line (the yellow double line), `s` along it, `t` to its left.
//! Traffic keeps right: *forward* lanes (travelling +s) lie at `t < 0`, *backward* lanes at
//! `t > 0`; lane `k = 0` is next to the centre line.

use hdmap_core::nalgebra::Point3;
use hdmap_core::{
    ArrowKind, BoundaryRef, Crosswalk, DashPattern, EdgeKind, ElementId, Lane, LaneBoundary, LineType,
    MarkKind, MarkingColor, RoadEdge, RoadLayout, StopLine, SurfaceMark,
};

use crate::SimError;
use crate::config::{Direction, MarkingConfig, Move, SimConfig};
use crate::geom::{self, Grid, P2, RefLine, add, bezier, dir, in_polygon, left, norm, quad_bezier, sub};
use crate::noise;
use crate::terrain::Terrain;

/// Lateral distance from the edge line to the kerb (a shoulder where cars park), m.
pub const CURB_OFFSET_M: f64 = 2.0;

/// What a road end is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoadEnd {
    /// A junction, reached along arm `arm` (the road leaves the junction in that direction).
    Junction {
        /// Junction index.
        junction: usize,
        /// Direction of the arm, seen from the junction.
        arm: Direction,
    },
    /// A dead end with a cul-de-sac.
    DeadEnd,
}

/// A road between two ends.
#[derive(Debug, Clone)]
pub struct Road {
    /// Name (`west`, `h0_1`, ...).
    pub name: String,
    /// Reference (centre) line.
    pub line: RefLine,
    /// Lanes per direction.
    pub lanes: usize,
    /// End at s = 0.
    pub start: RoadEnd,
    /// End at s = length.
    pub end: RoadEnd,
}

/// A junction of the grid.
#[derive(Debug, Clone)]
pub struct Junction {
    /// Centre, local metres.
    pub center: P2,
    /// Arms by direction index ([`Direction::CCW`]): (road, whether the road starts here).
    pub arms: [Option<(usize, bool)>; 4],
    /// Distance from the centre to where roads start, m.
    pub clearance_m: f64,
}

/// One painted polygon.
#[derive(Debug, Clone)]
pub struct Paint {
    /// Outline (not closed), local metres.
    pub ring: Vec<P2>,
    /// Colour.
    pub color: MarkingColor,
    /// The layout element it belongs to.
    pub element: ElementId,
    /// Paint freshness 0–1 (1 = new); worn spots appear where wear noise exceeds it.
    pub freshness: f64,
    /// Bounds.
    pub bounds: [f64; 4],
}

/// A lane identified by road, travel direction and index from the centre line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaneKey {
    /// Road index.
    pub road: usize,
    /// Travelling +s.
    pub forward: bool,
    /// Lane index from the centre line.
    pub k: usize,
}

/// A movement through a junction from an inbound lane to an outbound lane.
#[derive(Debug, Clone)]
pub struct Connector {
    /// Junction index.
    pub junction: usize,
    /// Inbound lane.
    pub from: LaneKey,
    /// Outbound lane.
    pub to: LaneKey,
    /// Turn kind.
    pub turn: Move,
    /// Centre path, stop line to stop line.
    pub path: Vec<P2>,
}

/// A cul-de-sac at a road's dead end.
#[derive(Debug, Clone, Copy)]
pub struct Bulb {
    /// Road index.
    pub road: usize,
    /// Disk centre.
    pub center: P2,
    /// Disk radius, m.
    pub radius: f64,
}

/// The whole painted and paved network.
#[derive(Debug, Clone)]
pub struct RoadMap {
    /// Roads.
    pub roads: Vec<Road>,
    /// Junctions.
    pub junctions: Vec<Junction>,
    /// Lane width, m.
    pub lane_width: f64,
    /// Paint geometry.
    pub markings: MarkingConfig,
    /// Sidewalk width, m.
    pub sidewalk_m: f64,
    /// Ground-truth layout (absolute CRS coordinates).
    pub layout: RoadLayout,
    /// Every painted polygon.
    pub paints: Vec<Paint>,
    /// Paved road surface polygons (road strips in 2 m quads, junction boxes, cul-de-sacs).
    pub surfaces: Vec<Vec<P2>>,
    /// Sidewalk polygons (raised by the kerb height).
    pub sidewalks: Vec<Vec<P2>>,
    /// Kerb lines.
    pub curbs: Vec<Vec<P2>>,
    /// Junction movements.
    pub connectors: Vec<Connector>,
    /// Cul-de-sacs.
    pub bulbs: Vec<Bulb>,
    /// Layout lane ids of each lane's pieces, in travel order.
    pub lane_pieces: std::collections::HashMap<LaneKey, Vec<ElementId>>,
    surface_grid: Grid,
    sidewalk_grid: Grid,
    paint_grid: Grid,
    seed: u64,
    /// Bounds of everything paved or paved-adjacent, local metres.
    pub bounds: [f64; 4],
}

fn ring_bounds(r: &[P2]) -> [f64; 4] {
    geom::bounds(r)
}

/// Builds the road geometry of a config (no paint yet).
fn build_roads(cfg: &SimConfig) -> Result<(Vec<Road>, Vec<Junction>), SimError> {
    let n = &cfg.network;
    let w = n.lane_width_m;
    let [gx, gy] = n.grid;
    let jidx = |i: usize, j: usize| j * gx + i;
    let mut junctions: Vec<Junction> = (0..gy)
        .flat_map(|j| (0..gx).map(move |i| (i, j)))
        .map(|(i, j)| Junction {
            center: [i as f64 * n.spacing_m, j as f64 * n.spacing_m],
            arms: [None; 4],
            clearance_m: 0.0,
        })
        .collect();
    // Half width (kerb to centre) of every arm, to size the junction boxes.
    let hw = |lanes: usize| lanes as f64 * w + CURB_OFFSET_M;
    let mut max_hw = vec![0.0f64; junctions.len()];
    for j in 0..gy {
        for i in 0..gx {
            let k = jidx(i, j);
            if gx > 1 {
                max_hw[k] = max_hw[k].max(hw(n.lanes_east_west));
            }
            if gy > 1 {
                max_hw[k] = max_hw[k].max(hw(n.lanes_north_south));
            }
        }
    }
    for s in &n.spurs {
        let k = jidx(s.junction[0], s.junction[1]);
        max_hw[k] = max_hw[k].max(hw(s.lanes));
    }
    for (k, j) in junctions.iter_mut().enumerate() {
        j.clearance_m = max_hw[k] + 6.0;
    }
    let mut roads = Vec::new();
    let attach = |junctions: &mut Vec<Junction>,
                  road: usize,
                  jk: usize,
                  d: Direction,
                  at_start: bool|
     -> Result<(), SimError> {
        let slot = &mut junctions[jk].arms[d.index()];
        if slot.is_some() {
            return Err(SimError::Config(format!("two roads leave junction {jk} to the {d:?}")));
        }
        *slot = Some((road, at_start));
        Ok(())
    };
    for j in 0..gy {
        for i in 0..gx {
            if i + 1 < gx {
                let (a, b) = (jidx(i, j), jidx(i + 1, j));
                let pa = add(junctions[a].center, [1.0, 0.0], junctions[a].clearance_m);
                let pb = add(junctions[b].center, [-1.0, 0.0], junctions[b].clearance_m);
                let r = roads.len();
                roads.push(Road {
                    name: format!("h{i}_{j}"),
                    line: RefLine::straight(pa, pb),
                    lanes: n.lanes_east_west,
                    start: RoadEnd::Junction { junction: a, arm: Direction::East },
                    end: RoadEnd::Junction { junction: b, arm: Direction::West },
                });
                attach(&mut junctions, r, a, Direction::East, true)?;
                attach(&mut junctions, r, b, Direction::West, false)?;
            }
            if j + 1 < gy {
                let (a, b) = (jidx(i, j), jidx(i, j + 1));
                let pa = add(junctions[a].center, [0.0, 1.0], junctions[a].clearance_m);
                let pb = add(junctions[b].center, [0.0, -1.0], junctions[b].clearance_m);
                let r = roads.len();
                roads.push(Road {
                    name: format!("v{i}_{j}"),
                    line: RefLine::straight(pa, pb),
                    lanes: n.lanes_north_south,
                    start: RoadEnd::Junction { junction: a, arm: Direction::North },
                    end: RoadEnd::Junction { junction: b, arm: Direction::South },
                });
                attach(&mut junctions, r, a, Direction::North, true)?;
                attach(&mut junctions, r, b, Direction::South, false)?;
            }
        }
    }
    for s in &n.spurs {
        let jk = jidx(s.junction[0], s.junction[1]);
        let start = add(junctions[jk].center, dir(s.direction.heading()), junctions[jk].clearance_m);
        let r = roads.len();
        if roads.iter().any(|x| x.name == s.name) {
            return Err(SimError::Config(format!("two roads named {}", s.name)));
        }
        roads.push(Road {
            name: s.name.clone(),
            line: RefLine::from_segments(start, s.direction.heading(), &s.segments),
            lanes: s.lanes,
            start: RoadEnd::Junction { junction: jk, arm: s.direction },
            end: RoadEnd::DeadEnd,
        });
        attach(&mut junctions, r, jk, s.direction, true)?;
    }
    Ok((roads, junctions))
}

/// The arrow of inbound lane `k` of `n`, and the turns that lane allows.
pub fn lane_turns(k: usize, n: usize) -> (ArrowKind, Vec<Move>) {
    if n == 1 {
        (ArrowKind::Straight, vec![Move::Straight, Move::Left, Move::Right])
    } else if k == 0 {
        (ArrowKind::Left, vec![Move::Left])
    } else if k + 1 == n {
        (ArrowKind::StraightRight, vec![Move::Straight, Move::Right])
    } else {
        (ArrowKind::Straight, vec![Move::Straight])
    }
}

/// Direction index after a turn, arriving at a junction along arm `from_arm`.
pub fn turn_target(from_arm: Direction, turn: Move) -> Option<Direction> {
    let heading = from_arm.opposite().index();
    match turn {
        Move::Straight => Some(Direction::CCW[heading]),
        Move::Left => Some(Direction::CCW[(heading + 1) % 4]),
        Move::Right => Some(Direction::CCW[(heading + 3) % 4]),
        Move::Uturn => None,
    }
}

struct Ids(u64);
impl Ids {
    fn next(&mut self) -> ElementId {
        self.0 += 1;
        ElementId(self.0)
    }
}

impl RoadMap {
    /// Lateral offset of a lane's centre.
    pub fn lane_t(&self, forward: bool, k: usize) -> f64 {
        let t = (k as f64 + 0.5) * self.lane_width;
        if forward { -t } else { t }
    }

    /// Kerb half width of a road, m.
    pub fn half_width(&self, road: usize) -> f64 {
        self.roads[road].lanes as f64 * self.lane_width + CURB_OFFSET_M
    }

    /// Distance from a junction end of a road to its stop line, m.
    pub fn stop_s(&self) -> f64 {
        1.0 + self.markings.crosswalk_m + 1.0 + self.markings.stop_line_m / 2.0
    }

    /// The s-range `[a, b]` that lanes cover on a road (stop line to stop line / dead end).
    pub fn lane_range(&self, road: usize) -> (f64, f64) {
        let r = &self.roads[road];
        let len = r.line.length();
        let a = if matches!(r.start, RoadEnd::Junction { .. }) { self.stop_s() } else { 0.0 };
        let b = if matches!(r.end, RoadEnd::Junction { .. }) { len - self.stop_s() } else { len };
        (a, b)
    }

    /// Builds the map of a config.
    pub fn build(cfg: &SimConfig, terrain: &Terrain) -> Result<Self, SimError> {
        let (roads, junctions) = build_roads(cfg)?;
        let mut all_pts: Vec<P2> = Vec::new();
        for r in &roads {
            let hw =
                r.lanes as f64 * cfg.network.lane_width_m + CURB_OFFSET_M + cfg.scenery.sidewalk_m + 30.0;
            all_pts.push(r.line.at(0.0, hw));
            all_pts.push(r.line.at(0.0, -hw));
            all_pts.push(r.line.at(r.line.length(), hw));
            all_pts.push(r.line.at(r.line.length(), -hw));
            // Past a dead end lies the cul-de-sac.
            let (pe, he) = r.line.pose(r.line.length());
            all_pts.push(add(add(pe, dir(he), 2.0 * hw), left(he), hw));
            all_pts.push(add(add(pe, dir(he), 2.0 * hw), left(he), -hw));
            let mut s = 0.0;
            while s < r.line.length() {
                all_pts.push(r.line.at(s, hw));
                all_pts.push(r.line.at(s, -hw));
                s += 10.0;
            }
        }
        for j in &junctions {
            all_pts.push(add(j.center, [-j.clearance_m - 40.0, -j.clearance_m - 40.0], 1.0));
            all_pts.push(add(j.center, [j.clearance_m + 40.0, j.clearance_m + 40.0], 1.0));
        }
        let b = geom::bounds(&all_pts);
        let mut map = RoadMap {
            roads,
            junctions,
            lane_width: cfg.network.lane_width_m,
            markings: cfg.markings.clone(),
            sidewalk_m: cfg.scenery.sidewalk_m,
            layout: RoadLayout::new(cfg.origin.clone()),
            paints: Vec::new(),
            surfaces: Vec::new(),
            sidewalks: Vec::new(),
            curbs: Vec::new(),
            connectors: Vec::new(),
            bulbs: Vec::new(),
            lane_pieces: Default::default(),
            surface_grid: Grid::new(b, 8.0),
            sidewalk_grid: Grid::new(b, 8.0),
            paint_grid: Grid::new(b, 4.0),
            seed: cfg.seed,
            bounds: b,
        };
        for (i, r) in map.roads.iter().enumerate() {
            if r.line.length() < 2.0 * map.stop_s() + 20.0 {
                return Err(SimError::Config(format!(
                    "road {} ({i}) is only {:.1} m long",
                    r.name,
                    r.line.length()
                )));
            }
        }
        let mut ids = Ids(0);
        map.build_surfaces();
        map.build_paint_and_layout(&mut ids, terrain)?;
        map.build_connectors(&mut ids, terrain);
        for (i, s) in map.surfaces.iter().enumerate() {
            let bb = ring_bounds(s);
            map.surface_grid.insert(i as u32, bb);
        }
        for (i, s) in map.sidewalks.iter().enumerate() {
            let bb = ring_bounds(s);
            map.sidewalk_grid.insert(i as u32, bb);
        }
        for (i, p) in map.paints.iter().enumerate() {
            map.paint_grid.insert(i as u32, p.bounds);
        }
        Ok(map)
    }

    fn junction_ring(&self, jk: usize) -> (Vec<P2>, Vec<Vec<P2>>) {
        let j = &self.junctions[jk];
        let r0 = j.clearance_m;
        let maxhw = (0..4).filter_map(|d| j.arms[d].map(|(r, _)| self.half_width(r))).fold(0.0, f64::max);
        // Per direction: (right point, left point, is an arm).
        let mut sides: Vec<(P2, P2, bool)> = Vec::new();
        for d in Direction::CCW {
            let h = d.heading();
            match j.arms[d.index()] {
                Some((r, at_start)) => {
                    let road = &self.roads[r];
                    let hw = self.half_width(r);
                    let s = if at_start { 0.0 } else { road.line.length() };
                    let (pr, pl) = if at_start {
                        (road.line.at(s, -hw), road.line.at(s, hw))
                    } else {
                        (road.line.at(s, hw), road.line.at(s, -hw))
                    };
                    sides.push((pr, pl, true));
                }
                None => {
                    let c = add(j.center, dir(h), r0);
                    sides.push((add(c, left(h), -maxhw - 2.0), add(c, left(h), maxhw + 2.0), false));
                }
            }
        }
        let mut ring = Vec::new();
        let mut curbs = Vec::new();
        let mut current: Vec<P2> = Vec::new();
        for i in 0..4 {
            let (pr, pl, arm) = sides[i];
            let (nr, _, narm) = sides[(i + 1) % 4];
            if arm {
                if !current.is_empty() {
                    current.push(pr);
                    curbs.push(std::mem::take(&mut current));
                }
                ring.push(pr);
                ring.push(pl);
            } else {
                if current.is_empty() {
                    current.push(pr);
                }
                current.push(pl);
                ring.push(pr);
                ring.push(pl);
            }
            let hd = Direction::CCW[i].heading();
            let hn = Direction::CCW[(i + 1) % 4].heading();
            let corner: Vec<P2> = if arm && narm {
                // Control point: where the two kerb lines meet.
                let (a, da) = (pl, dir(hd));
                let (b, db) = (nr, dir(hn));
                let den = da[0] * db[1] - da[1] * db[0];
                let u = ((b[0] - a[0]) * db[1] - (b[1] - a[1]) * db[0]) / den;
                let c = add(a, da, u);
                quad_bezier(pl, c, nr, 16)
            } else {
                vec![pl, nr]
            };
            if current.is_empty() {
                current.push(pl);
            }
            current.extend(corner[1..corner.len() - 1].iter().copied());
            ring.extend(corner[1..corner.len() - 1].iter().copied());
            if narm {
                current.push(nr);
                curbs.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            if let Some(first) = curbs.first_mut() {
                current.extend(first.iter().copied());
                *first = current;
            } else {
                curbs.push(current);
            }
        }
        (ring, curbs)
    }

    fn build_surfaces(&mut self) {
        let sw = self.sidewalk_m;
        for ri in 0..self.roads.len() {
            let hw = self.half_width(ri);
            let line = self.roads[ri].line.clone();
            let len = line.length();
            let n = (len / 2.0).ceil() as usize;
            for i in 0..n {
                let (s0, s1) = (len * i as f64 / n as f64, len * (i + 1) as f64 / n as f64);
                self.surfaces.push(vec![
                    line.at(s0, -hw),
                    line.at(s1, -hw),
                    line.at(s1, hw),
                    line.at(s0, hw),
                ]);
            }
            for side in [-1.0, 1.0] {
                let mut ring = line.offset(0.0, len, side * hw, 2.0);
                let mut outer = line.offset(0.0, len, side * (hw + sw), 2.0);
                outer.reverse();
                ring.extend(outer);
                self.sidewalks.push(ring);
                self.curbs.push(line.offset(0.0, len, side * hw, 1.0));
            }
            if self.roads[ri].end == RoadEnd::DeadEnd {
                let radius = hw + 1.5;
                let (pe, he) = line.pose(len);
                let e = (radius * radius - hw * hw).sqrt();
                let center = add(pe, dir(he), e);
                self.bulbs.push(Bulb { road: ri, center, radius });
                let disk: Vec<P2> = (0..72)
                    .map(|i| add(center, dir(i as f64 * std::f64::consts::TAU / 72.0), radius))
                    .collect();
                self.surfaces.push(disk);
                // Kerb: from the left kerb end around the far side to the right kerb end.
                let a0 = {
                    let p = sub(line.at(len, hw), center);
                    p[1].atan2(p[0])
                };
                let a1 = {
                    let p = sub(line.at(len, -hw), center);
                    p[1].atan2(p[0])
                };
                let mut sweep = a1 - a0;
                while sweep > 0.0 {
                    sweep -= std::f64::consts::TAU;
                }
                let arc: Vec<P2> =
                    (0..=64).map(|i| add(center, dir(a0 + sweep * i as f64 / 64.0), radius)).collect();
                let mut ring = arc.clone();
                let mut outer: Vec<P2> =
                    (0..=64).map(|i| add(center, dir(a0 + sweep * i as f64 / 64.0), radius + sw)).collect();
                outer.reverse();
                ring.extend(outer);
                self.sidewalks.push(ring);
                self.curbs.push(arc);
            }
        }
        for jk in 0..self.junctions.len() {
            let (ring, curbs) = self.junction_ring(jk);
            self.surfaces.push(ring);
            for c in curbs {
                // The junction ring runs counter-clockwise: outward is to the right.
                let mut poly = c.clone();
                let mut outer = geom::offset_polyline(&c, -sw);
                outer.reverse();
                poly.extend(outer);
                self.sidewalks.push(poly);
                self.curbs.push(c);
            }
        }
    }

    fn add_paint(&mut self, ring: Vec<P2>, color: MarkingColor, element: ElementId, key: i64) {
        let fresh =
            1.0 - self.markings.wear * (0.5 + noise::unit(noise::hash(self.seed, "paint-fresh", &[key])));
        let bounds = ring_bounds(&ring);
        self.paints.push(Paint { ring, color, element, freshness: fresh.clamp(0.0, 1.0), bounds });
    }

    fn pts3(&self, pts: &[P2], terrain: &Terrain) -> Vec<Point3<f64>> {
        let o = &self.layout.origin.origin;
        pts.iter().map(|p| Point3::new(o[0] + p[0], o[1] + p[1], o[2] + terrain.height(p[0], p[1]))).collect()
    }

    fn build_paint_and_layout(&mut self, ids: &mut Ids, terrain: &Terrain) -> Result<(), SimError> {
        let m = self.markings.clone();
        let w = self.lane_width;
        let period = m.dash_m + m.gap_m;
        for ri in 0..self.roads.len() {
            let road = self.roads[ri].clone();
            let n = road.lanes;
            let len = road.line.length();
            let (a, b) = self.lane_range(ri);
            let start_j = matches!(road.start, RoadEnd::Junction { .. });
            let end_j = matches!(road.end, RoadEnd::Junction { .. });
            // Pieces of constant line type: (s0, s1, solid).
            let solid = m.solid_near_junction_m;
            let mut pieces: Vec<(f64, f64, bool)> = Vec::new();
            let a_end = if start_j { a + solid } else { a };
            let b_start = if end_j { b - solid } else { b };
            if b_start - a_end < 2.0 * period {
                pieces.push((a, b, true));
            } else {
                if start_j {
                    pieces.push((a, a_end, true));
                }
                pieces.push((a_end, b_start, false));
                if end_j {
                    pieces.push((b_start, b, true));
                }
            }
            let dash_start = a + noise::unit(noise::hash(self.seed, "dash-phase", &[ri as i64])) * period;
            // Boundaries per piece: index b in -n..=n (t = b·w).
            let mut bids: Vec<Vec<ElementId>> = Vec::new();
            for (pi, &(s0, s1, is_solid)) in pieces.iter().enumerate() {
                let mut row = Vec::new();
                for bi in -(n as i64)..=(n as i64) {
                    let id = ids.next();
                    let t = bi as f64 * w;
                    let (line_type, color) = if bi == 0 {
                        (LineType::DoubleSolid, MarkingColor::Yellow)
                    } else if bi.unsigned_abs() as usize == n || is_solid {
                        (LineType::Solid, MarkingColor::White)
                    } else {
                        (LineType::Dashed, MarkingColor::White)
                    };
                    let dash = (line_type == LineType::Dashed).then(|| DashPattern {
                        paint_m: m.dash_m,
                        gap_m: m.gap_m,
                        phase_m: (s0 - dash_start).rem_euclid(period),
                    });
                    let pts = road.line.offset(s0, s1, t, 1.0);
                    // Paint is cut from the boundary as the layout defines it (dashes along the
                    // boundary's own arc length), in local coordinates.
                    let local = LaneBoundary {
                        id,
                        line_type,
                        color,
                        width_m: m.line_width_m,
                        dash,
                        points: pts.iter().map(|p| Point3::new(p[0], p[1], 0.0)).collect(),
                    };
                    for (q, ring) in
                        hdmap_core::boundary_paint(&local, m.double_gap_m).into_iter().enumerate()
                    {
                        let key = ((ri as i64) << 40) | ((pi as i64) << 32) | ((bi + 64) << 20) | q as i64;
                        self.add_paint(ring, color, id, key);
                    }
                    self.layout
                        .lane_boundaries
                        .push(LaneBoundary { points: self.pts3(&pts, terrain), ..local });
                    row.push(id);
                }
                bids.push(row);
            }
            let id = ids.next();
            let pts = road.line.offset(0.0, len, 0.0, 1.0);
            self.layout
                .road_centerlines
                .push(hdmap_core::RoadCenterline { id, points: self.pts3(&pts, terrain) });
            // Kerbs.
            let hw = self.half_width(ri);
            for side in [-1.0, 1.0] {
                let id = ids.next();
                let pts = road.line.offset(0.0, len, side * hw, 1.0);
                self.layout.road_edges.push(RoadEdge {
                    id,
                    kind: EdgeKind::Curb { height_m: 0.15 },
                    points: self.pts3(&pts, terrain),
                });
            }
            // Stop lines, crosswalks and arrows at junction ends.
            let mut stop_ids: [Option<ElementId>; 2] = [None, None];
            for (end_i, at_start) in [(0usize, true), (1, false)] {
                let is_j = if at_start { start_j } else { end_j };
                if !is_j {
                    continue;
                }
                // s of a point `d` metres from this end.
                let s_of = |d: f64| if at_start { d } else { len - d };
                // Inbound lanes travel toward this end: backward lanes at the start end.
                let inbound_sign = if at_start { 1.0 } else { -1.0 };
                let nw = n as f64 * w;
                let sid = ids.next();
                let ss = s_of(self.stop_s());
                let stop_pts =
                    vec![road.line.at(ss, inbound_sign * 0.3), road.line.at(ss, inbound_sign * nw)];
                self.layout.stop_lines.push(StopLine {
                    id: sid,
                    width_m: m.stop_line_m,
                    points: self.pts3(&stop_pts, terrain),
                });
                let (t0, t1) = if at_start { (0.3, nw) } else { (-nw, -0.3) };
                let sl0 = ss - m.stop_line_m / 2.0;
                let sl1 = ss + m.stop_line_m / 2.0;
                let mut ring = road.line.offset(sl0, sl1, t0, 0.5);
                let mut other = road.line.offset(sl0, sl1, t1, 0.5);
                other.reverse();
                ring.extend(other);
                self.add_paint(ring, MarkingColor::White, sid, sid.0 as i64);
                stop_ids[end_i] = Some(sid);
                // Crosswalk: stripes along s, across the whole carriageway.
                let cid = ids.next();
                let (c0, c1) = (s_of(1.0), s_of(1.0 + m.crosswalk_m));
                let (c0, c1) = (c0.min(c1), c0.max(c1));
                let poly = vec![
                    road.line.at(c0, -nw),
                    road.line.at(c1, -nw),
                    road.line.at(c1, nw),
                    road.line.at(c0, nw),
                ];
                self.layout.crosswalks.push(Crosswalk {
                    id: cid,
                    polygon: self.pts3(&poly, terrain),
                    stripe_m: m.crosswalk_stripe_m,
                    gap_m: m.crosswalk_stripe_m,
                });
                let pitch = 2.0 * m.crosswalk_stripe_m;
                let count = ((2.0 * nw + m.crosswalk_stripe_m) / pitch).floor() as usize;
                let span = count as f64 * pitch - m.crosswalk_stripe_m;
                for k in 0..count {
                    let tc = -span / 2.0 + m.crosswalk_stripe_m / 2.0 + k as f64 * pitch;
                    let ring = vec![
                        road.line.at(c0, tc - m.crosswalk_stripe_m / 2.0),
                        road.line.at(c1, tc - m.crosswalk_stripe_m / 2.0),
                        road.line.at(c1, tc + m.crosswalk_stripe_m / 2.0),
                        road.line.at(c0, tc + m.crosswalk_stripe_m / 2.0),
                    ];
                    self.add_paint(ring, MarkingColor::White, cid, (cid.0 as i64) << 8 | k as i64);
                }
                // Arrows on inbound lanes, pointing toward the junction.
                for k in 0..n {
                    let (kind, _) = lane_turns(k, n);
                    let aid = ids.next();
                    let forward_inbound = !at_start;
                    let t = self.lane_t(forward_inbound, k);
                    let tail_d = self.stop_s() + m.arrow_setback_m + 5.0;
                    let (tail, travel_h) = {
                        let (p, h) = road.line.pose(s_of(tail_d));
                        let h = if forward_inbound { h } else { h + std::f64::consts::PI };
                        (add(p, left(road.line.pose(s_of(tail_d)).1), t), h)
                    };
                    let ring: Vec<P2> = hdmap_core::layout::arrow_glyph(kind)
                        .into_iter()
                        .map(|[u, v]| add(add(tail, dir(travel_h), u), left(travel_h), v))
                        .collect();
                    self.layout.surface_marks.push(SurfaceMark {
                        id: aid,
                        kind: MarkKind::Arrow(kind),
                        polygon: self.pts3(&ring, terrain),
                    });
                    self.add_paint(ring, MarkingColor::White, aid, aid.0 as i64);
                }
            }
            // Lanes: one per piece, direction and index, linked in travel order.
            for forward in [true, false] {
                for k in 0..n {
                    let order: Vec<usize> =
                        if forward { (0..pieces.len()).collect() } else { (0..pieces.len()).rev().collect() };
                    let lane_ids: Vec<ElementId> = order.iter().map(|_| ids.next()).collect();
                    for (oi, &pi) in order.iter().enumerate() {
                        let (s0, s1, _) = pieces[pi];
                        let t = self.lane_t(forward, k);
                        let pts = if forward {
                            road.line.offset(s0, s1, t, 1.0)
                        } else {
                            road.line.offset(s1, s0, t, 1.0)
                        };
                        // Boundary indices: forward lane k lies between b = -k (left) and -(k+1).
                        let (bl, br) = if forward { (n - k, n - k - 1) } else { (n + k, n + k + 1) };
                        let last = oi + 1 == order.len();
                        let stop_line =
                            if last { if forward { stop_ids[1] } else { stop_ids[0] } } else { None };
                        self.layout.lanes.push(Lane {
                            id: lane_ids[oi],
                            left: BoundaryRef { id: bids[pi][bl], reversed: !forward },
                            right: BoundaryRef { id: bids[pi][br], reversed: !forward },
                            center_line: self.pts3(&pts, terrain),
                            successors: if last { Vec::new() } else { vec![lane_ids[oi + 1]] },
                            left_neighbour: None,
                            right_neighbour: None,
                            stop_line,
                            in_intersection: false,
                            kind: hdmap_core::LaneKind::Road,
                            bidirectional: false,
                        });
                    }
                    self.lane_pieces.insert(LaneKey { road: ri, forward, k }, lane_ids);
                }
            }
            // Neighbours: same direction, same piece.
            for forward in [true, false] {
                for k in 0..n {
                    let me = self.lane_pieces[&LaneKey { road: ri, forward, k }].clone();
                    let l =
                        (k > 0).then(|| self.lane_pieces[&LaneKey { road: ri, forward, k: k - 1 }].clone());
                    let r = (k + 1 < n)
                        .then(|| self.lane_pieces[&LaneKey { road: ri, forward, k: k + 1 }].clone());
                    for (i, id) in me.iter().enumerate() {
                        if let Some(lane) = self.layout.lanes.iter_mut().find(|x| x.id == *id) {
                            lane.left_neighbour = l.as_ref().map(|v| v[i]);
                            lane.right_neighbour = r.as_ref().map(|v| v[i]);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Centre-line point of a lane at its junction end (`at_end` = the end it travels to).
    fn lane_end(&self, key: LaneKey, at_end: bool) -> (P2, f64) {
        let (a, b) = self.lane_range(key.road);
        let line = &self.roads[key.road].line;
        let s = match (key.forward, at_end) {
            (true, true) | (false, false) => b,
            _ => a,
        };
        let (p, h) = line.pose(s);
        let h = if key.forward { h } else { h + std::f64::consts::PI };
        (add(p, left(line.pose(s).1), self.lane_t(key.forward, key.k)), h)
    }

    fn build_connectors(&mut self, ids: &mut Ids, terrain: &Terrain) {
        let w = self.lane_width;
        for jk in 0..self.junctions.len() {
            let arms = self.junctions[jk].arms;
            for d in Direction::CCW {
                let Some((ri, at_start)) = arms[d.index()] else { continue };
                let n = self.roads[ri].lanes;
                // Inbound lanes of this arm travel toward the junction.
                let inbound_forward = !at_start;
                for k in 0..n {
                    let (_, turns) = lane_turns(k, n);
                    for turn in turns {
                        let Some(td) = turn_target(d, turn) else { continue };
                        let Some((ro, o_at_start)) = arms[td.index()] else { continue };
                        let no = self.roads[ro].lanes;
                        let ko = match turn {
                            Move::Left => 0,
                            Move::Right => no - 1,
                            _ => k.min(no - 1),
                        };
                        let from = LaneKey { road: ri, forward: inbound_forward, k };
                        let to = LaneKey { road: ro, forward: o_at_start, k: ko };
                        let (a, ha) = self.lane_end(from, true);
                        let (b, hb) = self.lane_end(to, false);
                        let path = bezier(a, dir(ha), b, dir(hb), 1.0);
                        let id = ids.next();
                        let lb = ids.next();
                        let rb = ids.next();
                        for (bid, off) in [(lb, w / 2.0), (rb, -w / 2.0)] {
                            let pts = geom::offset_polyline(&path, off);
                            self.layout.lane_boundaries.push(LaneBoundary {
                                id: bid,
                                line_type: LineType::Virtual,
                                color: MarkingColor::White,
                                width_m: 0.0,
                                dash: None,
                                points: self.pts3(&pts, terrain),
                            });
                        }
                        let succ = self.lane_pieces[&to][0];
                        self.layout.lanes.push(Lane {
                            id,
                            left: BoundaryRef { id: lb, reversed: false },
                            right: BoundaryRef { id: rb, reversed: false },
                            center_line: self.pts3(&path, terrain),
                            successors: vec![succ],
                            left_neighbour: None,
                            right_neighbour: None,
                            stop_line: None,
                            in_intersection: true,
                            kind: hdmap_core::LaneKind::Road,
                            bidirectional: false,
                        });
                        let last = *self.lane_pieces[&from].last().unwrap_or(&id);
                        if let Some(l) = self.layout.lanes.iter_mut().find(|x| x.id == last) {
                            l.successors.push(id);
                        }
                        self.connectors.push(Connector { junction: jk, from, to, turn, path });
                    }
                }
            }
        }
    }

    /// True when `p` is on the paved road surface.
    pub fn on_road(&self, p: P2) -> bool {
        self.surface_grid.at(p).iter().any(|&i| in_polygon(p, &self.surfaces[i as usize]))
    }

    /// True when `p` is on a sidewalk.
    pub fn on_sidewalk(&self, p: P2) -> bool {
        self.sidewalk_grid.at(p).iter().any(|&i| in_polygon(p, &self.sidewalks[i as usize]))
    }

    /// The paint at `p` and its strength there (0 = worn away, 1 = fresh), if any.
    pub fn paint_at(&self, p: P2) -> Option<(&Paint, f64)> {
        let i = self.paint_grid.at(p).iter().find(|&&i| {
            let paint = &self.paints[i as usize];
            p[0] >= paint.bounds[0]
                && p[0] <= paint.bounds[2]
                && p[1] >= paint.bounds[1]
                && p[1] <= paint.bounds[3]
                && in_polygon(p, &paint.ring)
        })?;
        let paint = &self.paints[*i as usize];
        Some((paint, self.paint_strength(paint, p)))
    }

    /// Paint strength at `p` for a paint: worn spots where wear noise exceeds freshness.
    pub fn paint_strength(&self, paint: &Paint, p: P2) -> f64 {
        let wear = noise::fbm(self.seed, "wear", p[0], p[1], 0.6, 3);
        ((paint.freshness - wear * 0.9) * 4.0 + 0.5).clamp(0.0, 1.0)
    }

    /// Road and lane position of a point: (road, s, t) of the nearest road whose reference
    /// line it projects onto within the kerbs.
    pub fn road_coords(&self, p: P2) -> Option<(usize, f64, f64)> {
        self.roads.iter().enumerate().find_map(|(i, r)| {
            let hw = self.half_width(i);
            r.line.project(p).filter(|(_, t)| t.abs() <= hw).map(|(s, t)| (i, s, t))
        })
    }

    /// Length of all roads, m.
    pub fn total_length(&self) -> f64 {
        self.roads.iter().map(|r| r.line.length()).sum()
    }

    /// Distance to the nearest junction centre, m.
    pub fn junction_distance(&self, p: P2) -> f64 {
        self.junctions.iter().map(|j| norm(sub(p, j.center))).fold(f64::INFINITY, f64::min)
    }
}
