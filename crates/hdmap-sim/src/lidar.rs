//! The spinning LiDAR: every column of every sweep fires at its own time from the sensor pose
//! at that time (motion distortion is real and left in), against the static scene and the
//! movers placed at that time. Points are written in the sensor frame with per-point time,
//! ring, intensity by material, and SemanticKITTI labels.

use hdmap_core::nalgebra::{Isometry3, Vector3};
use hdmap_core::semantic::pack_label;
use hdmap_core::{CloudFrame, FrameId, PointCloud, TimeBase, Trajectory};

use crate::config::LidarConfig;
use crate::noise;
use crate::scene::{Object, Scene};
use crate::traffic::Mover;

/// One simulated sweep.
pub struct Scan {
    /// Index.
    pub index: usize,
    /// True start time, s from the drive start.
    pub start_s: f64,
    /// Points in the LiDAR frame (time in the sensor clock, Unix seconds).
    pub cloud: PointCloud,
    /// SemanticKITTI labels, one per point.
    pub labels: Vec<u32>,
}

/// Beam elevations, lowest first (ring 0 = lowest).
pub fn beam_elevations(cfg: &LidarConfig) -> Vec<f64> {
    let [lo, hi] = cfg.vertical_fov_deg;
    (0..cfg.beams).map(|b| (lo + (hi - lo) * b as f64 / (cfg.beams - 1) as f64).to_radians()).collect()
}

/// Simulates sweep `index` starting at `start_s` (true time, s from the drive start).
#[allow(clippy::too_many_arguments)]
pub fn simulate_scan(
    cfg: &LidarConfig,
    seed: u64,
    scene: &Scene,
    movers: &[Mover],
    parked: &[Object],
    world_from_vehicle: &Trajectory,
    vehicle_from_lidar: &Isometry3<f64>,
    index: usize,
    start_s: f64,
    clock: (f64, f64),
) -> Result<Scan, hdmap_core::CoreError> {
    let (unix_start, offset_s) = clock;
    let elev = beam_elevations(cfg);
    let n_col = (360.0 / cfg.azimuth_step_deg).round() as usize;
    let period = 1.0 / cfg.rate_hz;
    let pose_at = |t: f64| -> Result<Isometry3<f64>, hdmap_core::CoreError> {
        Ok(world_from_vehicle.interpolate(hdmap_core::time::seconds_to_ns(t))? * vehicle_from_lidar)
    };
    // Movers that can be in range during this sweep.
    let mid = pose_at(start_s + period / 2.0)?;
    let reach = cfg.range_m[1] + 15.0;
    let near: Vec<&Mover> = movers
        .iter()
        .filter(|m| {
            let (p, _) = m.state(&scene.map, start_s + period / 2.0);
            (p[0] - mid.translation.x).hypot(p[1] - mid.translation.y) < reach
        })
        .collect();
    let mut positions = Vec::new();
    let mut intensity = Vec::new();
    let mut rings = Vec::new();
    let mut times = Vec::new();
    let mut labels = Vec::new();
    let mut placed: Vec<Object> = Vec::with_capacity(near.len() + parked.len());
    for c in 0..n_col {
        let t = start_s + period * c as f64 / n_col as f64;
        let pose = pose_at(t)?;
        let o = pose.translation.vector;
        placed.clear();
        placed.extend(near.iter().map(|m| m.object(&scene.map, &scene.terrain, t)));
        placed.extend(parked.iter().copied());
        // Clockwise sweep starting straight ahead.
        let az = -(c as f64) * cfg.azimuth_step_deg.to_radians();
        for (ring, e) in elev.iter().enumerate() {
            let d_l = Vector3::new(e.cos() * az.cos(), e.cos() * az.sin(), e.sin());
            let d_w = pose.rotation * d_l;
            let key = noise::hash(seed, "ray", &[index as i64, c as i64, ring as i64]);
            let Some(hit) = scene.cast([o.x, o.y, o.z], [d_w.x, d_w.y, d_w.z], cfg.range_m[1], &placed, key)
            else {
                continue;
            };
            let range = hit.t + cfg.range_noise_m * noise::normal(noise::mix(key ^ 1));
            if range < cfg.range_m[0] || range > cfg.range_m[1] {
                continue;
            }
            let p = d_l * range;
            positions.push([p.x, p.y, p.z]);
            let refl = hit.reflectivity * (0.35 + 0.65 * hit.cos_incidence);
            let i = (255.0 * refl + 1.5 * noise::normal(noise::mix(key ^ 2))).clamp(0.0, 255.0);
            intensity.push(i as f32);
            rings.push(ring as u16);
            times.push(unix_start + t + offset_s);
            let class = hit.class;
            labels.push(pack_label(class, hit.instance));
        }
    }
    let mut cloud = PointCloud::from_positions(CloudFrame::Sensor(FrameId::Lidar(0)), positions);
    cloud.intensity = Some(intensity);
    cloud.ring = Some(rings);
    cloud.time_s = Some(times);
    cloud.time_base = TimeBase::Unix;
    Ok(Scan { index, start_s, cloud, labels })
}
