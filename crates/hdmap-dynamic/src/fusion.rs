//! One decision per point from the segmentation model and the free-space check.
//!
//! The model knows *what* a point is (car, pedestrian, …) but not whether it moved; the
//! free-space check knows *that* something left but errs on porous or grazed static surfaces
//! and misses the parts of an object no later ray passed through. Together, object by object:
//!
//! * In each scan, the points the model calls movable are grouped into objects (cells of
//!   `object_gap_m` that touch, 26 neighbours: points closer than that always join, points up
//!   to 2√3 × that apart may — a parked car within a metre of a moving one can join it). An object with at least `moving_share` of its points seen
//!   through moved: all its points go ([`Reason::MovingObject`]), also those the free-space
//!   check missed (near the ground band, in shadow of later rays).
//! * An object never (or barely) seen through stood still during the drive: a parked car.
//!   `keep_parked` decides ([`Reason::ParkedKept`] / [`Reason::ParkedRemoved`]).
//! * A point seen through that the model is sure is static (movable probability below
//!   `veto_below_movable_prob`: foliage, grazed facades) is kept
//!   ([`Reason::ModelStaticKept`]); less sure, the free-space check wins ([`Reason::SeenEmpty`]),
//!   so an object the model missed still leaves the map.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::MovableClass;
use crate::{Reason, ScanInput};

/// Settings of the model and its fusion with the free-space check (`[clean.model]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// The segmentation model: safetensors weights from `hdmap train dynamic`, or a TorchScript
    /// `.pt`, each with its `.toml` card beside it. Unset: the free-space check alone.
    pub weights: Option<PathBuf>,
    /// Keep movable objects that never moved during the drive (parked cars). Off: the static
    /// map holds no vehicles or people at all.
    pub keep_parked: bool,
    /// An object moved when at least this share of its points were seen through.
    pub moving_share: f64,
    /// Movable points in touching cells of this size belong to one object (points closer than
    /// this always, up to 2√3 × this apart possibly), m.
    pub object_gap_m: f64,
    /// A point seen through is kept when the model gives it a movable probability below this.
    pub veto_below_movable_prob: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            weights: None,
            keep_parked: false,
            moving_share: 0.2,
            object_gap_m: 0.5,
            veto_below_movable_prob: 0.1,
        }
    }
}

impl ModelConfig {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v, lo, hi) in [
            ("moving_share", self.moving_share, 0.0, 1.0),
            ("object_gap_m", self.object_gap_m, 0.01, 10.0),
            ("veto_below_movable_prob", self.veto_below_movable_prob, 0.0, 1.0),
        ] {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return Err(format!("model.{key} = {v}: must be within [{lo}, {hi}]"));
            }
        }
        Ok(())
    }
}

/// The model's view of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointClass {
    /// [`MovableClass`] code.
    pub class: u8,
    /// Probability that the point is movable.
    pub movable: f32,
}

impl PointClass {
    /// Whether the model's class can move.
    pub fn is_movable(&self) -> bool {
        MovableClass::from_code(self.class).is_some_and(MovableClass::movable)
    }
}

/// The points whose free-space decision can matter: those the model calls movable or is not
/// sure are static. The others stay whatever free space says, so the check need not trace for
/// them ([`crate::visibility::free_space_of`]).
pub fn candidates(classes: &[PointClass], cfg: &ModelConfig) -> Vec<bool> {
    classes.iter().map(|c| c.is_movable() || c.movable >= cfg.veto_below_movable_prob as f32).collect()
}

/// Fuses the free-space decisions `visibility` (one per point of `scans`, in order) with the
/// model's `classes` (same order) into the final decisions.
pub fn fuse(
    scans: &[ScanInput],
    visibility: &[Reason],
    classes: &[PointClass],
    cfg: &ModelConfig,
) -> Vec<Reason> {
    assert_eq!(visibility.len(), classes.len(), "one model label per free-space decision");
    let mut out = Vec::with_capacity(visibility.len());
    let mut start = 0;
    for s in scans {
        let n = s.points.len();
        let (vis, cls) = (&visibility[start..start + n], &classes[start..start + n]);
        let movable: Vec<usize> = (0..n).filter(|&i| cls[i].is_movable()).collect();
        let object = objects(&s.points, &movable, cfg.object_gap_m);
        // Per object: points and points seen through.
        let mut tally: HashMap<usize, (usize, usize)> = HashMap::new();
        for (&i, &o) in movable.iter().zip(&object) {
            let t = tally.entry(o).or_default();
            t.0 += 1;
            t.1 += (vis[i] == Reason::SeenEmpty) as usize;
        }
        let mut decision: Vec<Reason> = (0..n)
            .map(|i| match vis[i] {
                Reason::SeenEmpty if cls[i].movable < cfg.veto_below_movable_prob as f32 => {
                    Reason::ModelStaticKept
                }
                r => r,
            })
            .collect();
        for (&i, &o) in movable.iter().zip(&object) {
            let (total, seen) = tally[&o];
            decision[i] = if seen as f64 >= cfg.moving_share * total as f64 && seen > 0 {
                Reason::MovingObject
            } else if cfg.keep_parked {
                Reason::ParkedKept
            } else {
                Reason::ParkedRemoved
            };
        }
        out.extend(decision);
        start += n;
    }
    out
}

/// Object index of each of `points[idx]`: connected components of cells of side `gap` that
/// touch (26 neighbours, union–find), labelled by their smallest cell index.
fn objects(points: &[[f64; 3]], idx: &[usize], gap: f64) -> Vec<usize> {
    let cell = |p: &[f64; 3]| {
        [(p[0] / gap).floor() as i64, (p[1] / gap).floor() as i64, (p[2] / gap).floor() as i64]
    };
    let mut cells: HashMap<[i64; 3], usize> = HashMap::new();
    let mut cell_of = Vec::with_capacity(idx.len());
    for &i in idx {
        let c = cell(&points[i]);
        let next = cells.len();
        cell_of.push(*cells.entry(c).or_insert(next));
    }
    let mut parent: Vec<usize> = (0..cells.len()).collect();
    fn find(parent: &mut [usize], mut a: usize) -> usize {
        while parent[a] != a {
            parent[a] = parent[parent[a]];
            a = parent[a];
        }
        a
    }
    for (c, &k) in &cells {
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    if let Some(&j) = cells.get(&[c[0] + dx, c[1] + dy, c[2] + dz]) {
                        let (a, b) = (find(&mut parent, k), find(&mut parent, j));
                        if a != b {
                            parent[a.max(b)] = a.min(b);
                        }
                    }
                }
            }
        }
    }
    cell_of.iter().map(|&k| find(&mut parent, k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pc(class: MovableClass, movable: f32) -> PointClass {
        PointClass { class: class as u8, movable }
    }

    /// One scan: a moving car (partly seen through), a parked car (never seen through), a
    /// bush the free-space check wrongly clears, and a thing the model missed but that was
    /// seen through.
    #[test]
    fn objects_decide_together_and_the_model_vetoes_only_when_sure() {
        let mut points = Vec::new();
        let (mut vis, mut cls) = (Vec::new(), Vec::new());
        for k in 0..10 {
            // Moving car at x = 0..1 m: 3 of 10 points seen through (the rest: ground band, missed).
            points.push([k as f64 * 0.1, 0.0, 0.5]);
            vis.push(if k < 3 { Reason::SeenEmpty } else { Reason::Static });
            cls.push(pc(MovableClass::Car, 0.9));
            // Parked car 10 m away, one stray point seen through.
            points.push([10.0 + k as f64 * 0.1, 0.0, 0.5]);
            vis.push(if k == 0 { Reason::SeenEmpty } else { Reason::Static });
            cls.push(pc(MovableClass::Car, 0.9));
            // Bush at 20 m, all seen through, the model is sure it is static.
            points.push([20.0 + k as f64 * 0.1, 0.0, 0.5]);
            vis.push(Reason::SeenEmpty);
            cls.push(pc(MovableClass::Static, 0.02));
            // Missed object at 30 m: the model is unsure.
            points.push([30.0 + k as f64 * 0.1, 0.0, 0.5]);
            vis.push(Reason::SeenEmpty);
            cls.push(pc(MovableClass::Static, 0.4));
        }
        let scans = [ScanInput { origin: [0.0; 3], points }];
        for keep_parked in [false, true] {
            let cfg = ModelConfig { keep_parked, ..ModelConfig::default() };
            let r = fuse(&scans, &vis, &cls, &cfg);
            for k in 0..10 {
                assert_eq!(r[4 * k], Reason::MovingObject);
                assert_eq!(
                    r[4 * k + 1],
                    if keep_parked { Reason::ParkedKept } else { Reason::ParkedRemoved }
                );
                assert_eq!(r[4 * k + 2], Reason::ModelStaticKept);
                assert_eq!(r[4 * k + 3], Reason::SeenEmpty);
            }
        }
    }

    #[test]
    fn objects_split_at_the_gap() {
        let pts = [[0.0, 0.0, 0.0], [0.4, 0.0, 0.0], [0.8, 0.0, 0.0], [5.0, 0.0, 0.0]];
        let o = objects(&pts, &[0, 1, 2, 3], 0.5);
        assert_eq!(o[0], o[1]);
        assert_eq!(o[1], o[2]);
        assert_ne!(o[2], o[3]);
    }
}
