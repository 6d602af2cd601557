//! The visibility (free-space) check: a voxel that any ray of the drive saw through is free, and
//! a point inside a free voxel belongs to something that was not there at another time — a
//! car that drove on, a pedestrian who walked by. DUFOMap's idea, with two guards:
//!
//! * a ray never clears the voxels around its own scan's hits (`hit_inflation_m`: the surface
//!   it hit and its neighbours, so a slightly wrong pose does not let a scan erase the wall it
//!   sees) nor its last `endpoint_margin_m`;
//! * points within `ground_band_m` of the local ground (the lowest point of their ground cell)
//!   are kept: grazing rays pass a few centimetres above the road and would otherwise clear
//!   it — the over-removal of ground users report for DUFOMap;
//! * a voxel is free only when the scans that saw through it outnumber those that hit
//!   something in it `pass_ratio` to one: a facade or a parked car grazed by a few rays is hit
//!   by every scan that sees it, a car that drove on was hit by one or two.
//!
//! Rays are traversed voxel by voxel (Amanatides & Woo) in parallel per scan; only voxels that
//! hold points are tracked. The result does not depend on the order of scans or threads.

use std::collections::{HashMap, HashSet};

/// Voxel-key set with a fast, fixed (deterministic) hasher.
type Set = HashSet<u64, foldhash::fast::FixedState>;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ScanInput;

/// Settings of the free-space check (`[clean.visibility]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisibilityConfig {
    /// Voxel edge, m.
    pub voxel_size_m: f64,
    /// Voxels within this distance of a scan's own hits are never cleared by that scan, m.
    pub hit_inflation_m: f64,
    /// A ray clears nothing in its last stretch before the point it hit, m.
    pub endpoint_margin_m: f64,
    /// Rays longer than this clear nothing (far returns are sparse and their angle errors
    /// large), m.
    pub max_ray_m: f64,
    /// Side of the cells in which the ground height is the lowest point, m.
    pub ground_cell_m: f64,
    /// Points this close above the local ground are kept, m.
    pub ground_band_m: f64,
    /// A voxel is free when at least this many scans saw through it ...
    pub min_passes: u32,
    /// ... and the scans that saw through it are at least this many times those that hit
    /// something in it (a facade grazed by a few rays but hit by every scan stays).
    pub pass_ratio: f64,
}

impl Default for VisibilityConfig {
    fn default() -> Self {
        Self {
            voxel_size_m: 0.2,
            hit_inflation_m: 0.2,
            endpoint_margin_m: 0.3,
            max_ray_m: 40.0,
            ground_cell_m: 1.0,
            ground_band_m: 0.2,
            min_passes: 1,
            pass_ratio: 2.0,
        }
    }
}

impl VisibilityConfig {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v, min) in [
            ("voxel_size_m", self.voxel_size_m, 0.01),
            ("hit_inflation_m", self.hit_inflation_m, 0.0),
            ("endpoint_margin_m", self.endpoint_margin_m, 0.0),
            ("max_ray_m", self.max_ray_m, 0.1),
            ("ground_cell_m", self.ground_cell_m, 0.05),
            ("ground_band_m", self.ground_band_m, 0.0),
            ("pass_ratio", self.pass_ratio, 0.0),
        ] {
            if !(v.is_finite() && v >= min) {
                return Err(format!("visibility.{key} = {v}: must be a number ≥ {min}"));
            }
        }
        Ok(())
    }
}

/// Packs a voxel index (each component within ±2^20 voxels of the first point) into a key.
#[derive(Debug, Clone, Copy)]
struct Grid {
    base: [f64; 3],
    size: f64,
}

const HALF: i64 = 1 << 20;

impl Grid {
    fn index(&self, p: [f64; 3]) -> [i64; 3] {
        [0, 1, 2].map(|k| ((p[k] - self.base[k]) / self.size).floor() as i64)
    }

    fn key(i: [i64; 3]) -> Option<u64> {
        if i.iter().all(|v| (-HALF..HALF).contains(v)) {
            Some(i.iter().fold(0u64, |acc, v| (acc << 21) | (v + HALF) as u64))
        } else {
            None
        }
    }
}

/// The voxel index of a key ([`Grid::key`]'s inverse).
fn unpack(key: u64) -> [i64; 3] {
    let m = (1u64 << 21) - 1;
    [(key >> 42) & m, (key >> 21) & m, key & m].map(|v| v as i64 - HALF)
}

/// Visits the voxels a ray from `o` along unit `d` crosses for `length` metres.
#[cfg(test)]
fn traverse(g: &Grid, o: [f64; 3], d: [f64; 3], length: f64, mut visit: impl FnMut([i64; 3])) {
    traverse_span(g, o, d, 0.0, length, |c, _, _| visit(c));
}

/// Visits the voxels a ray from `o` along unit `d` crosses between `t0` and `t1` metres from
/// `o`, each with the span `[t_in, t_out)` of the ray inside it (clipped to `[t0, t1)`).
fn traverse_span(
    g: &Grid,
    o: [f64; 3],
    d: [f64; 3],
    t0: f64,
    t1: f64,
    mut visit: impl FnMut([i64; 3], f64, f64),
) {
    let mut cell = g.index([o[0] + d[0] * t0, o[1] + d[1] * t0, o[2] + d[2] * t0]);
    let mut step = [0i64; 3];
    let mut t_max = [f64::INFINITY; 3];
    let mut t_delta = [f64::INFINITY; 3];
    for k in 0..3 {
        if d[k] > 0.0 {
            step[k] = 1;
            t_max[k] = ((cell[k] + 1) as f64 * g.size + g.base[k] - o[k]) / d[k];
            t_delta[k] = g.size / d[k];
        } else if d[k] < 0.0 {
            step[k] = -1;
            t_max[k] = (cell[k] as f64 * g.size + g.base[k] - o[k]) / d[k];
            t_delta[k] = -g.size / d[k];
        }
    }
    let mut t = t0;
    while t < t1 {
        let k = if t_max[0] <= t_max[1] && t_max[0] <= t_max[2] {
            0
        } else if t_max[1] <= t_max[2] {
            1
        } else {
            2
        };
        visit(cell, t, t_max[k].min(t1));
        t = t_max[k];
        cell[k] += step[k];
        t_max[k] += t_delta[k];
    }
}

/// Voxels per block edge when rays are traced only through blocks that hold candidates.
const BLOCK: i64 = 8;

/// Why a point was kept or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Reason {
    /// Nothing says it moved.
    Static = 0,
    /// Removed: another scan saw through where it is.
    SeenEmpty = 1,
    /// Kept: seen through, but within the ground band (grazing rays skim the road).
    GroundKept = 2,
    /// Removed: the model says movable, and its object was seen through (it moved).
    MovingObject = 3,
    /// Removed: the model says movable, its object was never seen through (parked), and
    /// `keep_parked` is off.
    ParkedRemoved = 4,
    /// Kept: the model says movable, its object was never seen through, `keep_parked` is on.
    ParkedKept = 5,
    /// Kept: seen through, but the model is sure it is static (porous foliage, grazed edges).
    ModelStaticKept = 6,
}

impl Reason {
    /// Every reason, in code order.
    pub const ALL: [Reason; 7] = [
        Reason::Static,
        Reason::SeenEmpty,
        Reason::GroundKept,
        Reason::MovingObject,
        Reason::ParkedRemoved,
        Reason::ParkedKept,
        Reason::ModelStaticKept,
    ];

    /// Whether the point leaves the static map.
    pub fn removed(self) -> bool {
        matches!(self, Reason::SeenEmpty | Reason::MovingObject | Reason::ParkedRemoved)
    }
}

/// The free-space decision for every point of `scans` (scan by scan, point by point).
pub fn free_space(scans: &[ScanInput], cfg: &VisibilityConfig) -> Vec<Reason> {
    free_space_of(scans, cfg, None)
}

/// [`free_space`] for the points marked in `candidates` only (one flag per point of `scans`, in
/// order; `None`: every point); the others are `Static`. Rays are first walked through blocks
/// of 8 × 8 × 8 voxels and traced voxel by voxel only inside blocks that hold a candidate, so
/// few candidates (what a segmentation model could not vouch for) cost far less than the whole
/// cloud. The candidates' decisions are those [`free_space`] gives them, up to a voxel that a
/// ray only grazes where it crosses a block's edge or corner (floating-point ties; on the
/// validation drive the two agreed point for point).
pub fn free_space_of(
    scans: &[ScanInput],
    cfg: &VisibilityConfig,
    candidates: Option<&[bool]>,
) -> Vec<Reason> {
    let Some(first) = scans.iter().find_map(|s| s.points.first()) else { return Vec::new() };
    let g = Grid { base: *first, size: cfg.voxel_size_m };
    let coarse = Grid { base: *first, size: cfg.voxel_size_m * BLOCK as f64 };
    // Start of each scan's points in the flat point order.
    let starts: Vec<usize> = scans
        .iter()
        .scan(0usize, |acc, s| {
            let a = *acc;
            *acc += s.points.len();
            Some(a)
        })
        .collect();
    let is_candidate =
        |k: usize, i: usize| candidates.is_none_or(|c| c.get(starts[k] + i).copied().unwrap_or(false));
    // Voxels that hold a (candidate) point: the only ones whose freedom matters.
    let occupied: Set = scans
        .par_iter()
        .enumerate()
        .flat_map_iter(|(k, s)| {
            s.points
                .iter()
                .enumerate()
                .filter(move |(i, _)| is_candidate(k, *i))
                .filter_map(|(_, p)| Grid::key(g.index(*p)))
        })
        .collect();
    // Blocks holding such voxels (only used with candidates).
    let blocks: Set = if candidates.is_some() {
        occupied
            .iter()
            .filter_map(|k| {
                let c = unpack(*k);
                Grid::key(c.map(|v| v.div_euclid(BLOCK)))
            })
            .collect()
    } else {
        Set::default()
    };
    let r = (cfg.hit_inflation_m / cfg.voxel_size_m).ceil() as i64;
    let per_scan: Vec<(Vec<u64>, Vec<u64>)> = scans
        .par_iter()
        .map(|s| {
            // The scan's own hits; a voxel within `r` voxels of one is protected from its rays
            // (checked only for the few traversed voxels that hold points).
            let hits: Set = s.points.iter().filter_map(|p| Grid::key(g.index(*p))).collect();
            let protected = |c: [i64; 3]| {
                (-r..=r).any(|dx| {
                    (-r..=r).any(|dy| {
                        (-r..=r).any(|dz| {
                            Grid::key([c[0] + dx, c[1] + dy, c[2] + dz]).is_some_and(|k| hits.contains(&k))
                        })
                    })
                })
            };
            let mut free = Set::default();
            let mut checked = Set::default();
            for p in &s.points {
                let v = [p[0] - s.origin[0], p[1] - s.origin[1], p[2] - s.origin[2]];
                let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                if n > cfg.max_ray_m || n <= cfg.endpoint_margin_m {
                    continue;
                }
                let d = [v[0] / n, v[1] / n, v[2] / n];
                let mut fine = |t0: f64, t1: f64| {
                    traverse_span(&g, s.origin, d, t0, t1, |c, _, _| {
                        if let Some(k) = Grid::key(c)
                            && occupied.contains(&k)
                            && checked.insert(k)
                            && !protected(c)
                        {
                            free.insert(k);
                        }
                    })
                };
                let length = n - cfg.endpoint_margin_m;
                if candidates.is_none() {
                    fine(0.0, length);
                } else {
                    traverse_span(&coarse, s.origin, d, 0.0, length, |c, t_in, t_out| {
                        if Grid::key(c).is_some_and(|k| blocks.contains(&k)) {
                            fine(t_in, t_out);
                        }
                    });
                }
            }
            let mut v: Vec<u64> = free.into_iter().collect();
            v.sort_unstable();
            let mut h: Vec<u64> = hits.into_iter().collect();
            h.sort_unstable();
            (v, h)
        })
        .collect();
    // Per voxel: how many scans saw through it, and how many hit something in it.
    let mut counts: HashMap<u64, (u32, u32), foldhash::fast::FixedState> = HashMap::default();
    for (free, hits) in &per_scan {
        for k in free {
            counts.entry(*k).or_default().0 += 1;
        }
        for k in hits {
            if let Some(c) = counts.get_mut(k) {
                c.1 += 1;
            }
        }
    }
    // Hits are counted only where some scan saw through (the rest is static anyway); a scan
    // that saw through a voxel may have hit it too (rays of one scan both ways): count it once
    // each way.
    let free: Set = counts
        .iter()
        .filter(|(_, (passes, hits))| {
            *passes >= cfg.min_passes && *passes as f64 >= cfg.pass_ratio * *hits as f64
        })
        .map(|(k, _)| *k)
        .collect();
    // Local ground: the lowest point of each ground cell, over the whole drive.
    let cell =
        |p: &[f64; 3]| ((p[0] / cfg.ground_cell_m).floor() as i64, (p[1] / cfg.ground_cell_m).floor() as i64);
    let mut ground: HashMap<(i64, i64), f64, foldhash::fast::FixedState> = HashMap::default();
    for p in scans.iter().flat_map(|s| s.points.iter()) {
        let e = ground.entry(cell(p)).or_insert(f64::INFINITY);
        *e = e.min(p[2]);
    }
    let (free, ground) = (&free, &ground);
    scans
        .par_iter()
        .enumerate()
        .flat_map_iter(|(k, s)| {
            s.points.iter().enumerate().map(move |(i, p)| {
                let seen_empty =
                    is_candidate(k, i) && Grid::key(g.index(*p)).is_some_and(|k| free.contains(&k));
                if !seen_empty {
                    Reason::Static
                } else if p[2] - ground.get(&cell(p)).copied().unwrap_or(p[2]) <= cfg.ground_band_m {
                    Reason::GroundKept
                } else {
                    Reason::SeenEmpty
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_visits_the_voxels_of_a_diagonal_in_order() {
        let g = Grid { base: [0.0; 3], size: 1.0 };
        let mut seen = Vec::new();
        let d = [1.0 / 2f64.sqrt(), 1.0 / 2f64.sqrt(), 0.0];
        traverse(&g, [0.5, 0.2, 0.5], d, 2.0, |c| seen.push(c));
        // Every step moves to a face neighbour, and the ray's end lies in the last voxel.
        for w in seen.windows(2) {
            let dist: i64 = (0..3).map(|k| (w[1][k] - w[0][k]).abs()).sum();
            assert_eq!(dist, 1, "{seen:?}");
        }
        let end = [0.5 + 2.0 * d[0], 0.2 + 2.0 * d[1], 0.5];
        assert_eq!(*seen.last().expect("voxels"), g.index(end));
        assert_eq!(seen[0], [0, 0, 0]);
    }

    /// A wall and the ground seen from a moving sensor; a box stands in front of the wall for
    /// the first scans and is gone later: the box is removed, the wall and ground are kept.
    #[test]
    fn a_box_that_left_is_removed_and_the_scene_kept() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut scans = Vec::new();
        let mut is_box = Vec::new();
        for k in 0..8 {
            let origin = [k as f64 * 2.0, 0.0, 1.8];
            let mut points = Vec::new();
            for _ in 0..3000 {
                // Wall at y = 10, ground z = 0 between.
                let x = origin[0] + rng.random_range(-15.0..15.0);
                points.push([x, 10.0, rng.random_range(0.0..4.0)]);
                is_box.push(false);
                points.push([x, rng.random_range(2.0..10.0), 0.0]);
                is_box.push(false);
            }
            if k < 3 {
                for _ in 0..500 {
                    // A car-sized box in front of the wall.
                    let p = [rng.random_range(6.0..10.0), 6.0, rng.random_range(0.3..1.5)];
                    points.push(p);
                    is_box.push(true);
                }
            }
            scans.push(ScanInput { origin, points });
        }
        let reasons = free_space(&scans, &VisibilityConfig::default());
        let removed_box = reasons.iter().zip(&is_box).filter(|(r, b)| **b && r.removed()).count();
        let removed_scene = reasons.iter().zip(&is_box).filter(|(r, b)| !**b && r.removed()).count();
        let boxes = is_box.iter().filter(|b| **b).count();
        assert!(removed_box as f64 > 0.9 * boxes as f64, "{removed_box} of {boxes} box points removed");
        assert!(
            (removed_scene as f64) < 0.005 * (is_box.len() - boxes) as f64,
            "{removed_scene} scene points removed"
        );
        // Traced for candidates only (the box and every 50th other point), through blocks:
        // the candidates get the decisions the full check gives them, the rest stay.
        let candidates: Vec<bool> = is_box.iter().enumerate().map(|(i, b)| *b || i % 50 == 0).collect();
        let some = free_space_of(&scans, &VisibilityConfig::default(), Some(&candidates));
        for (i, c) in candidates.iter().enumerate() {
            let want = if *c { reasons[i] } else { Reason::Static };
            assert_eq!(some[i], want, "point {i}");
        }
    }

    #[test]
    fn keys_unpack_to_their_voxels() {
        for c in [[0, 0, 0], [-5, 17, -(1 << 20)], [(1 << 20) - 1, -1, 3]] {
            assert_eq!(unpack(Grid::key(c).expect("in range")), c);
        }
    }
}
