//! Static scenery: buildings (tall near junctions: urban canyons), street trees, street
//! lights, traffic lights, and parked cars (a different set on the flight day and the drive
//! day, half of them shared).

use hdmap_core::SemanticClass;
use rand::Rng;

use crate::config::SimConfig;
use crate::geom::{P2, add, dir, left};
use crate::network::{RoadEnd, RoadMap};
use crate::noise;
use crate::scene::{Object, Shape};
use crate::terrain::Terrain;

/// Instance ids: static things count up from here, movers from [`MOVER_INSTANCE_BASE`].
pub const STATIC_INSTANCE_BASE: u16 = 1;
/// First instance id of moving objects.
pub const MOVER_INSTANCE_BASE: u16 = 20_000;

fn corners(center: P2, yaw: f64, half: [f64; 2]) -> [P2; 4] {
    let (u, v) = (dir(yaw), left(yaw));
    [
        add(add(center, u, half[0]), v, half[1]),
        add(add(center, u, -half[0]), v, half[1]),
        add(add(center, u, -half[0]), v, -half[1]),
        add(add(center, u, half[0]), v, -half[1]),
    ]
}

/// Separating-axis overlap test of two yawed rectangles (with a margin).
fn rects_overlap(a: (P2, f64, [f64; 2]), b: (P2, f64, [f64; 2]), margin: f64) -> bool {
    let ca = corners(a.0, a.1, [a.2[0] + margin, a.2[1] + margin]);
    let cb = corners(b.0, b.1, b.2);
    for axis in [dir(a.1), left(a.1), dir(b.1), left(b.1)] {
        let proj = |c: &[P2; 4]| {
            c.iter()
                .map(|p| p[0] * axis[0] + p[1] * axis[1])
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let (a0, a1) = proj(&ca);
        let (b0, b1) = proj(&cb);
        if a1 < b0 || b1 < a0 {
            return false;
        }
    }
    true
}

/// Static objects of the world (buildings, trees, poles, traffic lights).
pub fn static_objects(cfg: &SimConfig, map: &RoadMap, terrain: &Terrain) -> Vec<Object> {
    let sc = &cfg.scenery;
    let mut objs = Vec::new();
    let mut instance = STATIC_INSTANCE_BASE;
    let mut next_instance = || {
        instance += 1;
        instance
    };
    let mut footprints: Vec<(P2, f64, [f64; 2])> = Vec::new();
    let ground = |p: P2| terrain.height(p[0], p[1]) + cfg.scenery.curb_height_m;
    // Buildings along every road side.
    for (ri, road) in map.roads.iter().enumerate() {
        let hw = map.half_width(ri);
        let len = road.line.length();
        for side in [-1.0f64, 1.0] {
            let mut rng = noise::rng(cfg.seed, "buildings", &[ri as i64, side as i64]);
            let mut s = rng.random_range(0.0..8.0);
            while s < len {
                let width = rng.random_range(14.0..34.0);
                let depth = rng.random_range(12.0..24.0);
                let setback = rng.random_range(2.0..6.0);
                let sc_mid = s + width / 2.0;
                s += width + rng.random_range(3.0..10.0);
                if sc_mid > len {
                    break;
                }
                let (_, h) = road.line.pose(sc_mid);
                let t = side * (hw + map.sidewalk_m + setback + depth / 2.0);
                let center = road.line.at(sc_mid, t);
                let half = [width / 2.0, depth / 2.0];
                let fp = (center, h, half);
                let pts = corners(center, h, half);
                let probe: Vec<P2> = pts
                    .iter()
                    .copied()
                    .chain([center])
                    .chain((0..4).map(|k| {
                        let (a, b) = (pts[k], pts[(k + 1) % 4]);
                        [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
                    }))
                    .collect();
                if probe.iter().any(|p| map.on_road(*p) || map.on_sidewalk(*p)) {
                    continue;
                }
                if footprints.iter().any(|f| rects_overlap(fp, *f, 1.0)) {
                    continue;
                }
                let near = (-map.junction_distance(center) / 110.0).exp();
                let (lo, hi) = (sc.storeys[0] as f64, sc.storeys[1] as f64);
                let storeys = (lo
                    + (hi - lo) * (0.25 * rng.random::<f64>() + 0.75 * near * rng.random::<f64>()))
                .round();
                let base = pts.iter().map(|p| terrain.height(p[0], p[1])).fold(f64::INFINITY, f64::min);
                let grey = rng.random_range(90u8..200);
                footprints.push(fp);
                objs.push(Object {
                    shape: Shape::Box {
                        center,
                        yaw: h,
                        half,
                        z: [base - 1.0, base + cfg.scenery.curb_height_m + 3.2 * storeys],
                    },
                    class: SemanticClass::Building,
                    instance: next_instance(),
                    reflectivity: rng.random_range(0.18..0.45),
                    color: [
                        grey,
                        grey.saturating_sub(rng.random_range(0..25)),
                        grey.saturating_sub(rng.random_range(0..40)),
                    ],
                    porosity: 0.0,
                });
            }
        }
    }
    // Street trees and lights on sidewalks, clear of junction approaches.
    for (ri, road) in map.roads.iter().enumerate() {
        let hw = map.half_width(ri);
        let len = road.line.length();
        let (a, b) = map.lane_range(ri);
        let clear = |s: f64| s > a + 6.0 && s < b - 6.0 && (road.end != RoadEnd::DeadEnd || s < len - 10.0);
        for side in [-1.0f64, 1.0] {
            let mut rng = noise::rng(cfg.seed, "street", &[ri as i64, side as i64]);
            if sc.tree_spacing_m > 0.0 {
                let mut s = a + rng.random_range(0.0..sc.tree_spacing_m);
                while s < b {
                    let here = s;
                    s += sc.tree_spacing_m * rng.random_range(0.8..1.25);
                    if !clear(here) || rng.random::<f64>() < 0.15 {
                        continue;
                    }
                    let p = road.line.at(here, side * (hw + 1.1));
                    let g = ground(p);
                    let trunk = rng.random_range(2.4..3.4);
                    let r = rng.random_range(2.3..3.6);
                    let id = next_instance();
                    objs.push(Object {
                        shape: Shape::Cylinder { center: p, radius: 0.16, z: [g - 0.2, g + trunk + 0.8] },
                        class: SemanticClass::Trunk,
                        instance: id,
                        reflectivity: 0.32,
                        color: [80, 60, 40],
                        porosity: 0.0,
                    });
                    let green = rng.random_range(70u8..120);
                    objs.push(Object {
                        shape: Shape::Ellipsoid {
                            center: [p[0], p[1], g + trunk + r * 0.75],
                            radii: [r, r, r * 0.8],
                        },
                        class: SemanticClass::Vegetation,
                        instance: id,
                        reflectivity: 0.28,
                        color: [green / 2, green, green / 3],
                        porosity: 0.3,
                    });
                }
            }
            let mut s = a + sc.pole_spacing_m * 0.5 + rng.random_range(0.0..3.0);
            while s < b {
                if clear(s) {
                    let p = road.line.at(s, side * (hw + 0.45));
                    let g = ground(p);
                    objs.push(Object {
                        shape: Shape::Cylinder { center: p, radius: 0.12, z: [g - 0.2, g + 8.5] },
                        class: SemanticClass::Pole,
                        instance: next_instance(),
                        reflectivity: 0.5,
                        color: [150, 150, 150],
                        porosity: 0.0,
                    });
                }
                s += sc.pole_spacing_m;
            }
        }
    }
    // Traffic lights: a pole at the stop line on the right of each approach, a head over the lanes.
    for j in &map.junctions {
        for arm in j.arms.iter().flatten() {
            let (ri, at_start) = *arm;
            let road = &map.roads[ri];
            let hw = map.half_width(ri);
            let s = if at_start { map.stop_s() } else { road.line.length() - map.stop_s() };
            let side = if at_start { 1.0 } else { -1.0 };
            let p = road.line.at(s, side * (hw + 0.6));
            let g = ground(p);
            let (_, h) = road.line.pose(s);
            let id = next_instance();
            objs.push(Object {
                shape: Shape::Cylinder { center: p, radius: 0.15, z: [g - 0.2, g + 6.2] },
                class: SemanticClass::Pole,
                instance: id,
                reflectivity: 0.5,
                color: [120, 120, 120],
                porosity: 0.0,
            });
            let head = road.line.at(s, side * (hw - 4.0));
            objs.push(Object {
                shape: Shape::Box { center: head, yaw: h, half: [0.25, 1.6], z: [g + 5.4, g + 6.0] },
                class: SemanticClass::TrafficSign,
                instance: id,
                reflectivity: 0.22,
                color: [40, 40, 40],
                porosity: 0.0,
            });
        }
    }
    objs
}

/// A car's box on the ground at `p` heading `yaw`.
pub fn car_shape(terrain: &Terrain, p: P2, yaw: f64, size: [f64; 3]) -> Shape {
    let g = terrain.height(p[0], p[1]);
    Shape::Box { center: p, yaw, half: [size[0] / 2.0, size[1] / 2.0], z: [g + 0.05, g + size[2]] }
}

/// Parked cars in the shoulders. `day` selects the flight day (`"aerial"`) or the drive day
/// (`"drive"`); about half of the cars are the same on both days.
pub fn parked_cars(cfg: &SimConfig, map: &RoadMap, terrain: &Terrain, day: &str) -> Vec<Object> {
    let mut out = Vec::new();
    let mut instance = 10_000u16;
    for (ri, road) in map.roads.iter().enumerate() {
        let (a, b) = map.lane_range(ri);
        let (a, b) = (a + cfg.markings.solid_near_junction_m, b - cfg.markings.solid_near_junction_m);
        if b - a < 20.0 {
            continue;
        }
        let n = road.lanes as f64;
        for side in [-1.0f64, 1.0] {
            let mut rng = noise::rng(cfg.seed, "parked", &[ri as i64, side as i64]);
            let count =
                ((b - a) / 100.0 * cfg.scenery.parked_per_100m * rng.random_range(0.6..1.4)).round() as usize;
            let mut taken: Vec<f64> = Vec::new();
            for slot in 0..count {
                let s = rng.random_range(a..b);
                let shared = rng.random::<f64>() < 0.5;
                // Whether a car of the day's own half stands there: a second drive (`drive.seed`)
                // finds a different half.
                let day_seed = if day == "drive" { cfg.drive_seed() } else { cfg.seed };
                let own =
                    noise::unit(noise::hash(day_seed, day, &[ri as i64, side as i64, slot as i64])) < 0.5;
                instance += 1;
                if !(shared || own) || taken.iter().any(|x| (x - s).abs() < 7.0) {
                    continue;
                }
                taken.push(s);
                let t = side * (n * map.lane_width + 0.8);
                let p = road.line.at(s, t);
                let (_, h) = road.line.pose(s);
                let yaw = if side < 0.0 { h } else { h + std::f64::consts::PI };
                let size =
                    [rng.random_range(4.2..4.9), rng.random_range(1.75..1.9), rng.random_range(1.4..1.6)];
                let c = rng.random_range(0usize..5);
                let color = [[230, 230, 228], [30, 30, 32], [150, 150, 155], [160, 20, 25], [30, 50, 120]][c];
                out.push(Object {
                    shape: car_shape(terrain, p, yaw, size),
                    class: SemanticClass::Car,
                    instance,
                    reflectivity: [0.55, 0.08, 0.3, 0.25, 0.18][c],
                    color,
                    porosity: 0.0,
                });
            }
        }
    }
    out
}
