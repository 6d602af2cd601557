//! Terrain height: `z = z0 + gx·x + gy·y + A·sin(2πx/λ)·cos(2πy/λ)` (local metres), and the
//! raised (kerb-height) level of everything that is not paved road.

use crate::config::TerrainConfig;

/// The terrain surface.
#[derive(Debug, Clone)]
pub struct Terrain {
    cfg: TerrainConfig,
}

impl Terrain {
    /// A terrain from its config.
    pub fn new(cfg: &TerrainConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    /// Road-level height at local (x, y), metres above the vertical datum minus the origin's z.
    pub fn height(&self, x: f64, y: f64) -> f64 {
        let c = &self.cfg;
        let k = std::f64::consts::TAU / c.wavelength_m;
        c.base_height_m + c.slope[0] * x + c.slope[1] * y + c.undulation_m * (k * x).sin() * (k * y).cos()
    }

    /// Gradient (∂z/∂x, ∂z/∂y).
    pub fn gradient(&self, x: f64, y: f64) -> [f64; 2] {
        let c = &self.cfg;
        let k = std::f64::consts::TAU / c.wavelength_m;
        [
            c.slope[0] + c.undulation_m * k * (k * x).cos() * (k * y).cos(),
            c.slope[1] - c.undulation_m * k * (k * x).sin() * (k * y).sin(),
        ]
    }

    /// First intersection (ray parameter) of `o + t·d` with the terrain raised by `lift`, for
    /// `t` in `(0, t_max]`; Newton iterations from the flat-plane guess. `None` when the ray
    /// does not come down to the surface within range.
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3], lift: f64, t_max: f64) -> Option<f64> {
        let g = |t: f64| o[2] + t * d[2] - self.height(o[0] + t * d[0], o[1] + t * d[1]) - lift;
        let g0 = g(0.0);
        if g0 <= 0.0 {
            return None;
        }
        let slope_at = |t: f64| {
            let gr = self.gradient(o[0] + t * d[0], o[1] + t * d[1]);
            d[2] - gr[0] * d[0] - gr[1] * d[1]
        };
        let s0 = slope_at(0.0);
        if s0 >= -1e-6 && g(t_max) > 0.0 {
            return None;
        }
        let mut t = if s0 < -1e-9 { (-g0 / s0).min(t_max) } else { t_max };
        for _ in 0..12 {
            let gt = g(t);
            let st = slope_at(t);
            if st.abs() < 1e-12 {
                break;
            }
            let next = (t - gt / st).clamp(0.0, t_max * 1.5);
            if (next - t).abs() < 1e-7 {
                t = next;
                break;
            }
            t = next;
        }
        (t > 0.0 && t <= t_max && g(t).abs() < 1e-4).then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_hits_lie_on_the_surface() {
        let terrain = Terrain::new(&TerrainConfig::default());
        for &(ox, oy, dx, dy, dz) in
            &[(0.0, 0.0, 1.0, 0.0, -0.1), (120.0, -40.0, -0.6, 0.8, -0.3), (5.0, 5.0, 0.0, 0.0, -1.0)]
        {
            let o = [ox, oy, terrain.height(ox, oy) + 2.0];
            let n = f64::sqrt(dx * dx + dy * dy + dz * dz);
            let d = [dx / n, dy / n, dz / n];
            let t = terrain.intersect(o, d, 0.0, 200.0).expect("hit");
            let p = [o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]];
            assert!((p[2] - terrain.height(p[0], p[1])).abs() < 1e-4);
        }
        let o = [0.0, 0.0, terrain.height(0.0, 0.0) + 2.0];
        assert!(terrain.intersect(o, [0.0, 0.0, 1.0], 0.0, 100.0).is_none());
    }
}
