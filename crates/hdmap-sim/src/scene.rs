//! Solid things and ray casting: static objects (buildings, poles, trees, traffic lights,
//! parked cars), moving objects placed per firing time, and the ground (terrain, kerbs,
//! sidewalks, paint) — everything a LiDAR ray can hit, with class, instance and reflectivity.

use hdmap_core::SemanticClass;

use crate::geom::{Grid, P2};
use crate::network::RoadMap;
use crate::noise;
use crate::terrain::Terrain;

/// A solid shape in local metres (z absolute, same datum as the terrain).
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A box, vertical sides, yawed about z.
    Box {
        /// Footprint centre.
        center: P2,
        /// Yaw, rad.
        yaw: f64,
        /// Half length (along yaw) and half width.
        half: [f64; 2],
        /// Bottom and top heights.
        z: [f64; 2],
    },
    /// A vertical cylinder.
    Cylinder {
        /// Axis position.
        center: P2,
        /// Radius.
        radius: f64,
        /// Bottom and top heights.
        z: [f64; 2],
    },
    /// An axis-aligned ellipsoid.
    Ellipsoid {
        /// Centre.
        center: [f64; 3],
        /// Semi-axes.
        radii: [f64; 3],
    },
    /// A thin flat rectangle in any pose (a calibration board): `center ± a·u ± b·v`, |a|, |b| ≤ 1,
    /// with `u ⊥ v` (the hit test projects onto each side separately).
    Panel {
        /// Centre.
        center: [f64; 3],
        /// Half-extent along the first side.
        u: [f64; 3],
        /// Half-extent along the second side.
        v: [f64; 3],
    },
}

fn dot3(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

impl Shape {
    /// Horizontal bounds.
    pub fn bounds(&self) -> [f64; 4] {
        match *self {
            Shape::Box { center, half, yaw, .. } => {
                let (c, s) = (yaw.cos().abs(), yaw.sin().abs());
                let ex = half[0] * c + half[1] * s;
                let ey = half[0] * s + half[1] * c;
                [center[0] - ex, center[1] - ey, center[0] + ex, center[1] + ey]
            }
            Shape::Cylinder { center, radius, .. } => {
                [center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius]
            }
            Shape::Ellipsoid { center, radii } => {
                [center[0] - radii[0], center[1] - radii[1], center[0] + radii[0], center[1] + radii[1]]
            }
            Shape::Panel { center, u, v } => {
                let (ex, ey) = (u[0].abs() + v[0].abs(), u[1].abs() + v[1].abs());
                [center[0] - ex, center[1] - ey, center[0] + ex, center[1] + ey]
            }
        }
    }

    /// Top height.
    pub fn top(&self) -> f64 {
        match *self {
            Shape::Box { z, .. } | Shape::Cylinder { z, .. } => z[1],
            Shape::Ellipsoid { center, radii } => center[2] + radii[2],
            Shape::Panel { center, u, v } => center[2] + u[2].abs() + v[2].abs(),
        }
    }

    /// Height of the shape's top surface at (x, y), if it covers that point.
    pub fn height_at(&self, p: P2) -> Option<f64> {
        match *self {
            Shape::Box { center, yaw, half, z } => {
                let d = [p[0] - center[0], p[1] - center[1]];
                let (c, s) = (yaw.cos(), yaw.sin());
                let u = c * d[0] + s * d[1];
                let v = -s * d[0] + c * d[1];
                (u.abs() <= half[0] && v.abs() <= half[1]).then_some(z[1])
            }
            Shape::Cylinder { center, radius, z } => {
                ((p[0] - center[0]).hypot(p[1] - center[1]) <= radius).then_some(z[1])
            }
            Shape::Ellipsoid { center, radii } => {
                let (a, b) = ((p[0] - center[0]) / radii[0], (p[1] - center[1]) / radii[1]);
                let q = 1.0 - a * a - b * b;
                (q >= 0.0).then(|| center[2] + radii[2] * q.sqrt())
            }
            // A board is held up, not stood on.
            Shape::Panel { .. } => None,
        }
    }

    /// First intersection `(t, cos_incidence)` of the ray `o + t·d` (|d| = 1) with `t > 0`.
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3]) -> Option<(f64, f64)> {
        match *self {
            Shape::Box { center, yaw, half, z } => {
                let (c, s) = (yaw.cos(), yaw.sin());
                let rel = [o[0] - center[0], o[1] - center[1]];
                let lo = [c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], o[2]];
                let ld = [c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]];
                let mins = [-half[0], -half[1], z[0]];
                let maxs = [half[0], half[1], z[1]];
                let (mut t0, mut t1, mut axis) = (f64::NEG_INFINITY, f64::INFINITY, 0usize);
                for k in 0..3 {
                    if ld[k].abs() < 1e-12 {
                        if lo[k] < mins[k] || lo[k] > maxs[k] {
                            return None;
                        }
                        continue;
                    }
                    let (mut a, mut b) = ((mins[k] - lo[k]) / ld[k], (maxs[k] - lo[k]) / ld[k]);
                    if a > b {
                        std::mem::swap(&mut a, &mut b);
                    }
                    if a > t0 {
                        t0 = a;
                        axis = k;
                    }
                    t1 = t1.min(b);
                }
                if t0 > t1 || t0 <= 1e-6 {
                    return None;
                }
                Some((t0, ld[axis].abs()))
            }
            Shape::Cylinder { center, radius, z } => {
                let (ox, oy) = (o[0] - center[0], o[1] - center[1]);
                let a = d[0] * d[0] + d[1] * d[1];
                if a < 1e-12 {
                    return None;
                }
                let b = 2.0 * (ox * d[0] + oy * d[1]);
                let c = ox * ox + oy * oy - radius * radius;
                let disc = b * b - 4.0 * a * c;
                if disc < 0.0 {
                    return None;
                }
                let t = (-b - disc.sqrt()) / (2.0 * a);
                if t <= 1e-6 {
                    return None;
                }
                let zt = o[2] + t * d[2];
                if zt < z[0] || zt > z[1] {
                    return None;
                }
                let n = [(ox + t * d[0]) / radius, (oy + t * d[1]) / radius];
                Some((t, (n[0] * d[0] + n[1] * d[1]).abs()))
            }
            Shape::Ellipsoid { center, radii } => {
                let lo = [
                    (o[0] - center[0]) / radii[0],
                    (o[1] - center[1]) / radii[1],
                    (o[2] - center[2]) / radii[2],
                ];
                let ld = [d[0] / radii[0], d[1] / radii[1], d[2] / radii[2]];
                let a = ld[0] * ld[0] + ld[1] * ld[1] + ld[2] * ld[2];
                let b = 2.0 * (lo[0] * ld[0] + lo[1] * ld[1] + lo[2] * ld[2]);
                let c = lo[0] * lo[0] + lo[1] * lo[1] + lo[2] * lo[2] - 1.0;
                let disc = b * b - 4.0 * a * c;
                if disc < 0.0 {
                    return None;
                }
                let t = (-b - disc.sqrt()) / (2.0 * a);
                if t <= 1e-6 {
                    return None;
                }
                let n = [
                    (lo[0] + t * ld[0]) / radii[0],
                    (lo[1] + t * ld[1]) / radii[1],
                    (lo[2] + t * ld[2]) / radii[2],
                ];
                let nn = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-12);
                Some((t, ((n[0] * d[0] + n[1] * d[1] + n[2] * d[2]) / nn).abs()))
            }
            Shape::Panel { center, u, v } => {
                let n = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
                let nn = dot3(n, n).sqrt();
                let nd = dot3(n, d) / nn;
                if nd.abs() < 1e-12 {
                    return None;
                }
                let rel = [center[0] - o[0], center[1] - o[1], center[2] - o[2]];
                let t = dot3(n, rel) / nn / nd;
                if t <= 1e-6 {
                    return None;
                }
                let h =
                    [o[0] + t * d[0] - center[0], o[1] + t * d[1] - center[1], o[2] + t * d[2] - center[2]];
                let (a, b) = (dot3(h, u) / dot3(u, u), dot3(h, v) / dot3(v, v));
                (a.abs() <= 1.0 && b.abs() <= 1.0).then_some((t, nd.abs()))
            }
        }
    }
}

/// A solid object.
#[derive(Debug, Clone, Copy)]
pub struct Object {
    /// Geometry.
    pub shape: Shape,
    /// Semantic class.
    pub class: SemanticClass,
    /// Instance id (0 for stuff).
    pub instance: u16,
    /// LiDAR reflectivity 0–1.
    pub reflectivity: f64,
    /// Colour seen from above (orthophoto).
    pub color: [u8; 3],
    /// Rays pass through with this probability (foliage).
    pub porosity: f64,
}

/// What a ray hit.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Ray parameter (range along the unit direction), m.
    pub t: f64,
    /// Class.
    pub class: SemanticClass,
    /// Instance id.
    pub instance: u16,
    /// Reflectivity 0–1.
    pub reflectivity: f64,
    /// |cos| of the incidence angle.
    pub cos_incidence: f64,
}

/// Storey height of the facades' window rows, m.
const FLOOR_M: f64 = 3.2;
/// Width of a facade bay (one window each), m.
const BAY_M: f64 = 2.4;

/// The window (floor, bay) a facade point `p` (local frame) lies in, if it lies in one: rows
/// from 0.3 to 0.8 of each storey, 60 % of each bay. Bays run along x + y, which varies along
/// every wall that is not diagonal.
pub fn window_at(p: [f64; 3]) -> Option<[i64; 2]> {
    let (fz, fs) = (p[2] / FLOOR_M, (p[0] + p[1]) / BAY_M);
    let (u, v) = (fz - fz.floor(), fs - fs.floor());
    ((0.3..0.8).contains(&u) && (0.2..0.8).contains(&v)).then_some([fz.floor() as i64, fs.floor() as i64])
}

/// The static world: terrain, road map, objects with a spatial index.
pub struct Scene {
    /// Terrain.
    pub terrain: Terrain,
    /// Road map.
    pub map: RoadMap,
    /// Static objects.
    pub objects: Vec<Object>,
    /// Kerb height, m.
    pub curb_height: f64,
    grid: Grid,
    seed: u64,
}

impl Scene {
    /// Indexes `objects` for ray casting.
    pub fn new(terrain: Terrain, map: RoadMap, objects: Vec<Object>, curb_height: f64, seed: u64) -> Self {
        let mut grid = Grid::new(map.bounds, 6.0);
        for (i, o) in objects.iter().enumerate() {
            grid.insert(i as u32, o.shape.bounds());
        }
        Self { terrain, map, objects, curb_height, grid, seed }
    }

    /// Ground reflectivity and class at a paved point (asphalt texture and paint).
    pub fn road_surface(&self, p: P2) -> (SemanticClass, f64) {
        let asphalt = 0.09 + 0.05 * (noise::fbm(self.seed, "asphalt", p[0], p[1], 1.5, 3) - 0.5);
        match self.map.paint_at(p) {
            Some((_, strength)) => {
                let refl = asphalt + (0.72 - asphalt) * strength;
                (if strength > 0.5 { SemanticClass::LaneMarking } else { SemanticClass::Road }, refl)
            }
            None => (SemanticClass::Road, asphalt),
        }
    }

    /// Ground hit: terrain with raised non-road areas, kerb faces and paint.
    fn ground_hit(&self, o: [f64; 3], d: [f64; 3], t_max: f64) -> Option<Hit> {
        let ch = self.curb_height;
        let at = |t: f64| [o[0] + t * d[0], o[1] + t * d[1]];
        let t_s = self.terrain.intersect(o, d, ch, t_max)?;
        let p_s = at(t_s);
        if !self.map.on_road(p_s) {
            let sidewalk = self.map.on_sidewalk(p_s);
            let (class, refl) =
                if sidewalk { (SemanticClass::Sidewalk, 0.28) } else { (SemanticClass::Terrain, 0.36) };
            return Some(Hit {
                t: t_s,
                class,
                instance: 0,
                reflectivity: refl,
                cos_incidence: (-d[2]).abs().max(0.05),
            });
        }
        let t_r = self.terrain.intersect(o, d, 0.0, t_max)?;
        let p_r = at(t_r);
        if self.map.on_road(p_r) {
            let (class, refl) = self.road_surface(p_r);
            return Some(Hit {
                t: t_r,
                class,
                instance: 0,
                reflectivity: refl,
                cos_incidence: (-d[2]).abs().max(0.05),
            });
        }
        // Between the two levels the ray leaves the road: it meets the kerb face.
        let (mut a, mut b) = (t_s, t_r);
        for _ in 0..20 {
            let m = 0.5 * (a + b);
            if self.map.on_road(at(m)) {
                a = m;
            } else {
                b = m;
            }
        }
        Some(Hit {
            t: b,
            class: SemanticClass::Sidewalk,
            instance: 0,
            reflectivity: 0.30,
            cos_incidence: (d[0] * d[0] + d[1] * d[1]).sqrt(),
        })
    }

    /// Casts a ray (|d| = 1) from `o` up to `t_max` against the ground, the static objects and
    /// the given moving objects. `ray_key` seeds the foliage pass-through draw. Facades carry
    /// their windows' glass ([`window_at`]) in the hit's reflectivity.
    pub fn cast(&self, o: [f64; 3], d: [f64; 3], t_max: f64, movers: &[Object], ray_key: u64) -> Option<Hit> {
        let mut hit = self.cast_plain(o, d, t_max, movers, ray_key)?;
        if hit.class == SemanticClass::Building {
            let p = [o[0] + hit.t * d[0], o[1] + hit.t * d[1], o[2] + hit.t * d[2]];
            if let Some(cell) = window_at(p) {
                let keys = [hit.instance as i64, cell[0], cell[1]];
                hit.reflectivity = 0.05 + 0.3 * noise::unit(noise::hash(self.seed, "window", &keys));
            }
        }
        Some(hit)
    }

    /// [`Self::cast`] without the facade texture.
    fn cast_plain(
        &self,
        o: [f64; 3],
        d: [f64; 3],
        t_max: f64,
        movers: &[Object],
        ray_key: u64,
    ) -> Option<Hit> {
        let mut best = self.ground_hit(o, d, t_max);
        let mut limit = best.map(|h| h.t).unwrap_or(t_max);
        let consider = |obj: &Object, idx: u64, best: &mut Option<Hit>, limit: &mut f64| {
            if let Some((t, cos)) = obj.shape.intersect(o, d)
                && t < *limit
            {
                if obj.porosity > 0.0
                    && noise::unit(noise::mix(ray_key ^ idx.wrapping_mul(0x9E37))) < obj.porosity
                {
                    return;
                }
                *limit = t;
                *best = Some(Hit {
                    t,
                    class: obj.class,
                    instance: obj.instance,
                    reflectivity: obj.reflectivity,
                    cos_incidence: cos.max(0.05),
                });
            }
        };
        for (i, m) in movers.iter().enumerate() {
            consider(m, 1_000_000 + i as u64, &mut best, &mut limit);
        }
        // 2D DDA over the object grid, stopping once the cell entry lies beyond the best hit.
        let g = &self.grid;
        let (nx, ny) = g.dims();
        let cell = g.cell();
        let org = g.origin();
        let hd = (d[0] * d[0] + d[1] * d[1]).sqrt();
        let Some((mut i, mut j)) = g.cell_of([o[0], o[1]]) else { return best };
        let step_i: i64 = if d[0] > 0.0 { 1 } else { -1 };
        let step_j: i64 = if d[1] > 0.0 { 1 } else { -1 };
        let next_boundary = |c: usize, o: f64, dd: f64, origin: f64| -> f64 {
            if dd.abs() < 1e-12 {
                return f64::INFINITY;
            }
            let edge = origin + (c as f64 + if dd > 0.0 { 1.0 } else { 0.0 }) * cell;
            (edge - o) / dd
        };
        let mut t_x = next_boundary(i, o[0], d[0], org[0]);
        let mut t_y = next_boundary(j, o[1], d[1], org[1]);
        let dt_x = if d[0].abs() < 1e-12 { f64::INFINITY } else { cell / d[0].abs() };
        let dt_y = if d[1].abs() < 1e-12 { f64::INFINITY } else { cell / d[1].abs() };
        let mut t_enter = 0.0;
        let mut seen: Vec<u32> = Vec::with_capacity(32);
        loop {
            for &idx in g.cell_items(i, j) {
                if seen.contains(&idx) {
                    continue;
                }
                seen.push(idx);
                consider(&self.objects[idx as usize], idx as u64, &mut best, &mut limit);
            }
            if hd < 1e-9 {
                break;
            }
            let t_exit = t_x.min(t_y);
            if t_exit >= limit || t_enter >= limit {
                break;
            }
            t_enter = t_exit;
            if t_x < t_y {
                let ni = i as i64 + step_i;
                if ni < 0 || ni >= nx as i64 {
                    break;
                }
                i = ni as usize;
                t_x += dt_x;
            } else {
                let nj = j as i64 + step_j;
                if nj < 0 || nj >= ny as i64 {
                    break;
                }
                j = nj as usize;
                t_y += dt_y;
            }
        }
        best
    }

    /// Height of the surface model (ground + static objects) at a point: the DSM.
    pub fn surface_height(&self, p: P2, extra: &[Object]) -> f64 {
        let mut z =
            self.terrain.height(p[0], p[1]) + if self.map.on_road(p) { 0.0 } else { self.curb_height };
        for &idx in self.grid.at(p) {
            if let Some(h) = self.objects[idx as usize].shape.height_at(p) {
                z = z.max(h);
            }
        }
        for o in extra {
            if let Some(h) = o.shape.height_at(p) {
                z = z.max(h);
            }
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_intersect_where_expected() {
        let b = Shape::Box { center: [10.0, 0.0], yaw: 0.3, half: [2.0, 1.0], z: [0.0, 1.5] };
        let (t, cos) = b.intersect([0.0, 0.0, 1.0], [1.0, 0.0, 0.0]).expect("hit");
        assert!(t > 7.5 && t < 9.0 && cos > 0.5, "{t} {cos}");
        assert!(b.intersect([0.0, 0.0, 2.0], [1.0, 0.0, 0.0]).is_none());
        let c = Shape::Cylinder { center: [5.0, 0.0], radius: 0.5, z: [0.0, 8.0] };
        let (t, cos) = c.intersect([0.0, 0.0, 1.0], [1.0, 0.0, 0.0]).expect("hit");
        assert!((t - 4.5).abs() < 1e-9 && (cos - 1.0).abs() < 1e-9);
        let e = Shape::Ellipsoid { center: [0.0, 0.0, 5.0], radii: [2.0, 2.0, 1.0] };
        let (t, _) = e.intersect([0.0, 0.0, 0.0], [0.0, 0.0, 1.0]).expect("hit");
        assert!((t - 4.0).abs() < 1e-9);
        assert_eq!(e.height_at([0.0, 0.0]), Some(6.0));
    }
}
