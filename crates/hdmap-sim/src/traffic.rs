//! Moving objects: cars (some changing lanes), pedestrians on crosswalks and sidewalks,
//! cyclists. Each has a closed-form position at any time, so the same model places them in
//! the orthophoto (flight time) and in every LiDAR firing (drive time).

use hdmap_core::SemanticClass;
use rand::Rng;
use rand_distr::{Distribution, Poisson};

use crate::config::SimConfig;
use crate::geom::{P2, norm, sub};
use crate::network::{RoadEnd, RoadMap};
use crate::noise;
use crate::scene::{Object, Shape};
use crate::scenery::{MOVER_INSTANCE_BASE, car_shape};
use crate::terrain::Terrain;

/// How a mover moves.
#[derive(Debug, Clone, Copy)]
pub enum Motion {
    /// Along a road at lateral offset `t_from`, moving to `t_to` around progress `lc_at`
    /// (lane change); wraps around the lane range.
    Road {
        /// Road index.
        road: usize,
        /// Travelling +s.
        forward: bool,
        /// Progress range start and length (s of the lane range).
        range: [f64; 2],
        /// Progress at time 0.
        u0: f64,
        /// Speed, m/s.
        speed: f64,
        /// Lateral offset before and after the lane change.
        t: [f64; 2],
        /// Progress at the middle of the lane change.
        lc_at: f64,
        /// Length of the lane change, m (0 = none).
        lc_len: f64,
    },
    /// Back and forth across a road at `s` between lateral offsets `t`.
    Crossing {
        /// Road index.
        road: usize,
        /// Position along the road.
        s: f64,
        /// Lateral end points.
        t: [f64; 2],
        /// Speed, m/s.
        speed: f64,
        /// Phase, s.
        phase: f64,
    },
}

/// A moving object.
#[derive(Debug, Clone, Copy)]
pub struct Mover {
    /// Class when moving (a "moving-*" class).
    pub class: SemanticClass,
    /// Instance id.
    pub instance: u16,
    /// Length, width, height.
    pub size: [f64; 3],
    /// Reflectivity.
    pub reflectivity: f64,
    /// Colour from above.
    pub color: [u8; 3],
    /// Motion.
    pub motion: Motion,
}

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

impl Mover {
    /// Position and heading at `time_s`.
    pub fn state(&self, map: &RoadMap, time_s: f64) -> (P2, f64) {
        match self.motion {
            Motion::Road { road, forward, range, u0, speed, t, lc_at, lc_len } => {
                let line = &map.roads[road].line;
                let pos = |u: f64| {
                    let u = u.rem_euclid(range[1]);
                    let s = if forward { range[0] + u } else { range[0] + range[1] - u };
                    let w = if lc_len > 0.0 { smoothstep((u - lc_at) / lc_len + 0.5) } else { 0.0 };
                    line.at(s, t[0] + (t[1] - t[0]) * w)
                };
                let u = u0 + speed * time_s;
                let p = pos(u);
                let d = sub(pos(u + 0.5), pos(u - 0.5));
                // At the wrap point the difference jumps: fall back to the road heading.
                let h = if norm(d) < 2.0 {
                    d[1].atan2(d[0])
                } else {
                    line.pose(range[0]).1 + if forward { 0.0 } else { std::f64::consts::PI }
                };
                (p, h)
            }
            Motion::Crossing { road, s, t, speed, phase } => {
                let line = &map.roads[road].line;
                let span = (t[1] - t[0]).abs();
                let period = 2.0 * span / speed;
                let x = ((time_s + phase).rem_euclid(period)) / period;
                let (f, dirn) = if x < 0.5 { (2.0 * x, 1.0) } else { (2.0 - 2.0 * x, -1.0) };
                let tt = t[0] + (t[1] - t[0]) * f;
                let (_, h) = line.pose(s);
                let h = h + dirn * (t[1] - t[0]).signum() * std::f64::consts::FRAC_PI_2;
                (line.at(s, tt), h)
            }
        }
    }

    /// The mover as a solid object at `time_s`.
    pub fn object(&self, map: &RoadMap, terrain: &Terrain, time_s: f64) -> Object {
        let (p, h) = self.state(map, time_s);
        let shape = match self.class {
            SemanticClass::MovingPerson => {
                let g = terrain.height(p[0], p[1]) + if map.on_road(p) { 0.0 } else { 0.15 };
                Shape::Cylinder { center: p, radius: self.size[1] / 2.0, z: [g, g + self.size[2]] }
            }
            _ => car_shape(terrain, p, h, self.size),
        };
        Object {
            shape,
            class: self.class,
            instance: self.instance,
            reflectivity: self.reflectivity,
            color: self.color,
            porosity: 0.0,
        }
    }
}

/// All movers of the world.
pub fn movers(cfg: &SimConfig, map: &RoadMap) -> Vec<Mover> {
    let tc = &cfg.traffic;
    let mut out = Vec::new();
    let mut instance = MOVER_INSTANCE_BASE;
    for (ri, road) in map.roads.iter().enumerate() {
        let (a, b) = map.lane_range(ri);
        let n = road.lanes;
        let mut rng = noise::rng(cfg.drive_seed(), "traffic", &[ri as i64]);
        for forward in [true, false] {
            for k in 0..n {
                let expected = tc.cars_per_lane_km * (b - a) / 1000.0;
                let count = if expected > 0.0 {
                    Poisson::new(expected).map(|p| p.sample(&mut rng) as usize).unwrap_or(0)
                } else {
                    0
                };
                for _ in 0..count {
                    instance += 1;
                    let t0 = map.lane_t(forward, k);
                    let change = rng.random::<f64>() < tc.lane_change_share && n > 1;
                    let k2 = if !change {
                        k
                    } else if k + 1 < n && (k == 0 || rng.random::<bool>()) {
                        k + 1
                    } else {
                        k - 1
                    };
                    let c = rng.random_range(0usize..6);
                    out.push(Mover {
                        class: SemanticClass::MovingCar,
                        instance,
                        size: [
                            rng.random_range(4.2..4.9),
                            rng.random_range(1.75..1.9),
                            rng.random_range(1.4..1.6),
                        ],
                        reflectivity: [0.55, 0.08, 0.3, 0.25, 0.18, 0.4][c],
                        color: [
                            [235, 235, 232],
                            [25, 25, 28],
                            [150, 150, 155],
                            [170, 25, 30],
                            [30, 50, 130],
                            [200, 200, 60],
                        ][c],
                        motion: Motion::Road {
                            road: ri,
                            forward,
                            range: [a, b - a],
                            u0: rng.random_range(0.0..(b - a)),
                            speed: rng.random_range(6.0..12.0),
                            t: [t0, map.lane_t(forward, k2)],
                            lc_at: rng.random_range(0.3..0.7) * (b - a),
                            lc_len: if change { 40.0 } else { 0.0 },
                        },
                    });
                }
            }
        }
        // Cyclists at the outer lane edge.
        let expected = tc.cyclists_per_km * (b - a) / 1000.0;
        let count = if expected > 0.0 {
            Poisson::new(expected).map(|p| p.sample(&mut rng) as usize).unwrap_or(0)
        } else {
            0
        };
        for _ in 0..count {
            instance += 1;
            let forward = rng.random::<bool>();
            let t = map.lane_t(forward, n - 1) + if forward { -1.1 } else { 1.1 };
            out.push(Mover {
                class: SemanticClass::MovingBicyclist,
                instance,
                size: [1.8, 0.6, 1.7],
                reflectivity: 0.35,
                color: [60, 90, 160],
                motion: Motion::Road {
                    road: ri,
                    forward,
                    range: [a, b - a],
                    u0: rng.random_range(0.0..(b - a)),
                    speed: rng.random_range(3.5..6.0),
                    t: [t, t],
                    lc_at: 0.0,
                    lc_len: 0.0,
                },
            });
        }
        // Pedestrians: on the crosswalks at junction ends, and along the sidewalks.
        let hw = map.half_width(ri);
        let len = road.line.length();
        for (end, at_start) in [(road.start, true), (road.end, false)] {
            if !matches!(end, RoadEnd::Junction { .. }) {
                continue;
            }
            for _ in 0..tc.pedestrians_per_crosswalk {
                instance += 1;
                let d = 1.0 + cfg.markings.crosswalk_m * rng.random_range(0.25..0.75);
                let s = if at_start { d } else { len - d };
                let dirn = if rng.random::<bool>() { 1.0 } else { -1.0 };
                out.push(Mover {
                    class: SemanticClass::MovingPerson,
                    instance,
                    size: [0.6, 0.6, rng.random_range(1.55..1.9)],
                    reflectivity: 0.3,
                    color: [rng.random_range(40..200), rng.random_range(40..200), rng.random_range(40..200)],
                    motion: Motion::Crossing {
                        road: ri,
                        s,
                        t: [-dirn * (hw + 1.0), dirn * (hw + 1.0)],
                        speed: rng.random_range(1.1..1.5),
                        phase: rng.random_range(0.0..100.0),
                    },
                });
            }
        }
        let walkers = ((b - a) / 60.0).round() as usize;
        for _ in 0..walkers {
            instance += 1;
            let forward = rng.random::<bool>();
            let side = if rng.random::<bool>() { 1.0 } else { -1.0 };
            let t = side * (hw + map.sidewalk_m * rng.random_range(0.45..0.85));
            out.push(Mover {
                class: SemanticClass::MovingPerson,
                instance,
                size: [0.6, 0.6, rng.random_range(1.55..1.9)],
                reflectivity: 0.3,
                color: [rng.random_range(40..200), rng.random_range(40..200), rng.random_range(40..200)],
                motion: Motion::Road {
                    road: ri,
                    forward,
                    range: [a, b - a],
                    u0: rng.random_range(0.0..(b - a)),
                    speed: rng.random_range(1.0..1.6),
                    t: [t, t],
                    lc_at: 0.0,
                    lc_len: 0.0,
                },
            });
        }
    }
    out
}
