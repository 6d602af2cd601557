//! Georeferencing: each LiDAR point is put into the world at the pose of its own acquisition
//! time (deskew / motion compensation), `world_from_lidar(t) = world_from_gnss(t) ·
//! gnss_from_vehicle · vehicle_from_lidar`, the INS trajectory interpolated on SE(3) (lerp +
//! slerp) and the rig's LiDAR clock offset applied.

use std::path::Path;

use hdmap_core::nalgebra::{Isometry3, Point3};
use hdmap_core::{CloudFrame, FrameId, PointCloud, TimeBase, Trajectory};

use crate::RegisterError;

/// Range filter and voxel size of georeferenced scans.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeorefConfig {
    /// Points closer than this to the sensor (the vehicle itself) are dropped, m.
    pub min_range_m: f64,
    /// Points farther than this are dropped, m.
    pub max_range_m: f64,
}

impl Default for GeorefConfig {
    fn default() -> Self {
        Self { min_range_m: 2.0, max_range_m: 80.0 }
    }
}

/// Puts scans into the world from an INS trajectory and a rig.
#[derive(Debug, Clone)]
pub struct Georeferencer {
    /// `world_from_gnss` (the INS solution).
    pub world_from_gnss: Trajectory,
    /// `gnss_from_lidar` from the rig.
    pub gnss_from_lidar: Isometry3<f64>,
    /// The LiDAR clock offset, ns: LiDAR stamps read `true_time + offset` (hdmap-core's
    /// `Extrinsic::time_offset_ns`), and the INS clock is the true time.
    pub lidar_time_offset_ns: i64,
}

/// A scan in the world.
#[derive(Debug, Clone)]
pub struct WorldScan {
    /// Reference time of the scan (its first point), ns.
    pub stamp_ns: i64,
    /// `world_from_lidar` at `stamp_ns`.
    pub world_from_lidar: Isometry3<f64>,
    /// Deskewed points in the LiDAR frame at `stamp_ns` (the scan as if taken at one instant).
    pub points_lidar: Vec<[f64; 3]>,
    /// Intensity per point, if the scan has it.
    pub intensity: Option<Vec<f32>>,
    /// Points removed by the range filter.
    pub dropped_range: usize,
    /// Index in the source scan of each kept point (provenance: `points_lidar[i]` is source
    /// point `kept[i]`).
    pub kept: Vec<u32>,
}

impl Georeferencer {
    /// `world_from_lidar` at a LiDAR time.
    pub fn world_from_lidar(&self, lidar_stamp_ns: i64) -> Result<Isometry3<f64>, RegisterError> {
        Ok(self.world_from_gnss.interpolate(self.ins_time(lidar_stamp_ns))? * self.gnss_from_lidar)
    }

    /// The INS-clock (true) time of a LiDAR stamp.
    pub fn ins_time(&self, lidar_stamp_ns: i64) -> i64 {
        lidar_stamp_ns - self.lidar_time_offset_ns
    }

    /// Whether the INS trajectory covers an INS-clock time.
    pub fn covers(&self, ins_ns: i64) -> bool {
        match (self.world_from_gnss.poses.first(), self.world_from_gnss.poses.last()) {
            (Some(a), Some(b)) => (a.stamp_ns..=b.stamp_ns).contains(&ins_ns),
            _ => false,
        }
    }

    /// Deskews and georeferences one scan (`cloud` in the LiDAR frame with per-point times in
    /// Unix seconds). `path` names the scan in errors.
    pub fn georeference(
        &self,
        path: &Path,
        cloud: &PointCloud,
        cfg: &GeorefConfig,
    ) -> Result<WorldScan, RegisterError> {
        let input =
            |m: &str| RegisterError::Input { path: path.display().to_string(), message: m.to_string() };
        if !matches!(cloud.frame, CloudFrame::Sensor(_) | CloudFrame::Undeclared) {
            return Err(input("the scan is not in a sensor frame"));
        }
        if cloud.is_empty() {
            return Err(input("the scan has no points"));
        }
        let times = cloud
            .time_s
            .as_ref()
            .ok_or_else(|| input("the scan has no per-point time (needed for deskewing)"))?;
        if matches!(cloud.time_base, TimeBase::ScanRelative | TimeBase::GpsWeekSeconds) {
            return Err(input("per-point times must be absolute (Unix or GPS) seconds to match the INS"));
        }
        let stamps: Vec<i64> = times.iter().map(|t| (t * 1e9).round() as i64).collect();
        if stamps.iter().any(|s| *s <= 0) {
            return Err(input("non-positive per-point time"));
        }
        let stamp_ns = *stamps.iter().min().unwrap_or(&0);
        let last_ns = *stamps.iter().max().unwrap_or(&0);
        if last_ns - stamp_ns > 1_000_000_000 {
            return Err(input("per-point times span more than 1 s (not one sweep?)"));
        }
        // A sweep the INS does not cover (before its first or after its last pose) is refused,
        // naming the scan.
        let (first, last) = (self.ins_time(stamp_ns), self.ins_time(last_ns));
        if !self.covers(first) || !self.covers(last) {
            return Err(input(&format!(
                "the sweep ({} .. {} ns on the INS clock) lies outside the INS trajectory ({} .. {} ns)",
                first,
                last,
                self.world_from_gnss.poses.first().map_or(0, |p| p.stamp_ns),
                self.world_from_gnss.poses.last().map_or(0, |p| p.stamp_ns)
            )));
        }
        let world_from_lidar = self.world_from_lidar(stamp_ns)?;
        let lidar0_from_world = world_from_lidar.inverse();
        // Poses at 0.1 ms steps across the sweep (interpolating each point is wasteful).
        const STEP_NS: i64 = 100_000;
        let steps = ((last_ns - stamp_ns) / STEP_NS + 2) as usize;
        let mut poses = Vec::with_capacity(steps);
        for k in 0..steps {
            poses.push(self.world_from_lidar((stamp_ns + k as i64 * STEP_NS).min(last_ns))?);
        }
        let mut points_lidar = Vec::with_capacity(cloud.len());
        let mut intensity = cloud.intensity.as_ref().map(|_| Vec::with_capacity(cloud.len()));
        let mut dropped_range = 0;
        let mut kept = Vec::with_capacity(cloud.len());
        for (i, p) in cloud.positions.iter().enumerate() {
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            if !(cfg.min_range_m..=cfg.max_range_m).contains(&r) {
                dropped_range += 1;
                continue;
            }
            let f = (stamps[i] - stamp_ns) as f64 / STEP_NS as f64;
            let k = (f.floor() as usize).min(steps - 2);
            let pose = hdmap_core::pose::interpolate_pose(&poses[k], &poses[k + 1], f - k as f64);
            let w = pose * Point3::from(p);
            let l = lidar0_from_world * w;
            points_lidar.push([l.x, l.y, l.z]);
            kept.push(i as u32);
            if let (Some(out), Some(src)) = (intensity.as_mut(), cloud.intensity.as_ref()) {
                out.push(src[i]);
            }
        }
        if points_lidar.is_empty() {
            return Err(input("no point within the range filter"));
        }
        Ok(WorldScan { stamp_ns, world_from_lidar, points_lidar, intensity, dropped_range, kept })
    }
}

/// The LiDAR frame id used for a rig's first LiDAR.
pub const LIDAR: FrameId = FrameId::Lidar(0);
