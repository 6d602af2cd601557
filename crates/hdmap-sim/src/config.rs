//! The simulator's configuration (`configs/sim/*.toml`). Every section has defaults except
//! `seed` and `origin`, which are always explicit; unknown keys are errors.

use hdmap_core::GeoOrigin;
use serde::{Deserialize, Serialize};

/// Root of a simulator config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random choice. Same seed + config ⇒ byte-identical outputs.
    pub seed: u64,
    /// CRS and map origin; the network is laid out in metres around `origin`.
    pub origin: GeoOrigin,
    /// Roads and junctions.
    pub network: NetworkConfig,
    /// Terrain shape (heights vary by metres).
    #[serde(default)]
    pub terrain: TerrainConfig,
    /// Paint geometry (Korean practice by default).
    #[serde(default)]
    pub markings: MarkingConfig,
    /// Buildings, trees, poles, parked cars.
    #[serde(default)]
    pub scenery: SceneryConfig,
    /// Moving traffic.
    #[serde(default)]
    pub traffic: TrafficConfig,
    /// Orthophoto and DSM.
    #[serde(default)]
    pub ortho: OrthoConfig,
    /// The MMS drive.
    #[serde(default)]
    pub drive: DriveConfig,
    /// GNSS/INS error model.
    #[serde(default)]
    pub gnss: GnssConfig,
    /// The spinning LiDAR.
    #[serde(default)]
    pub lidar: LidarConfig,
    /// Nominal and true sensor mounting.
    #[serde(default)]
    pub rig: RigConfig,
    /// Camera 0's images along the drive, and the light they are taken in.
    #[serde(default)]
    pub camera: CameraConfig,
}

/// A compass direction of a road leaving a junction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// +x.
    East,
    /// +y.
    North,
    /// −x.
    West,
    /// −y.
    South,
}

impl Direction {
    /// Heading in radians (counter-clockwise from +x).
    pub fn heading(self) -> f64 {
        match self {
            Direction::East => 0.0,
            Direction::North => std::f64::consts::FRAC_PI_2,
            Direction::West => std::f64::consts::PI,
            Direction::South => -std::f64::consts::FRAC_PI_2,
        }
    }

    /// The four directions in counter-clockwise order.
    pub const CCW: [Direction; 4] = [Direction::East, Direction::North, Direction::West, Direction::South];

    /// Index in [`Direction::CCW`].
    pub fn index(self) -> usize {
        match self {
            Direction::East => 0,
            Direction::North => 1,
            Direction::West => 2,
            Direction::South => 3,
        }
    }

    /// The opposite direction.
    pub fn opposite(self) -> Direction {
        Direction::CCW[(self.index() + 2) % 4]
    }
}

/// One piece of a road's reference line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Segment {
    /// Straight, `length_m` long.
    Line {
        /// Length, m.
        length_m: f64,
    },
    /// Constant curvature; positive radius turns left.
    Arc {
        /// Length along the arc, m.
        length_m: f64,
        /// Signed radius, m (positive = left turn).
        radius_m: f64,
    },
    /// Curvature changing linearly from `curvature_start` to `curvature_end` (1/m, positive =
    /// left), an Euler spiral as highway design uses between lines and arcs.
    Clothoid {
        /// Length, m.
        length_m: f64,
        /// Curvature at the start, 1/m.
        curvature_start: f64,
        /// Curvature at the end, 1/m.
        curvature_end: f64,
    },
}

/// A dead-end road leaving a junction (ends in a cul-de-sac).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpurConfig {
    /// Name, used by the drive route.
    pub name: String,
    /// Grid index `[i, j]` of the junction it leaves.
    pub junction: [usize; 2],
    /// Direction it leaves in.
    pub direction: Direction,
    /// Lanes per direction (2–6).
    pub lanes: usize,
    /// Reference-line pieces from the junction outward.
    pub segments: Vec<Segment>,
}

/// Roads and junctions: a grid of signalized 4-way junctions joined by straight roads, plus
/// dead-end spurs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Junction columns (east–west) and rows (north–south) of the grid.
    pub grid: [usize; 2],
    /// Distance between neighbouring junction centres, m.
    #[serde(default = "d_spacing")]
    pub spacing_m: f64,
    /// Lanes per direction on east–west grid roads.
    #[serde(default = "d_lanes")]
    pub lanes_east_west: usize,
    /// Lanes per direction on north–south grid roads.
    #[serde(default = "d_lanes")]
    pub lanes_north_south: usize,
    /// Lane width (line centre to line centre), m: 3.0–3.5 in towns.
    #[serde(default = "d_lane_width")]
    pub lane_width_m: f64,
    /// Dead-end roads.
    #[serde(default)]
    pub spurs: Vec<SpurConfig>,
}

fn d_spacing() -> f64 {
    300.0
}
fn d_lanes() -> usize {
    2
}
fn d_lane_width() -> f64 {
    3.25
}

/// Terrain height `z = z0 + slope·(x, y) + A·sin(2πx/λ)·cos(2πy/λ)` in local metres.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TerrainConfig {
    /// Height at the origin, m.
    pub base_height_m: f64,
    /// Grade along x and y (rise over run).
    pub slope: [f64; 2],
    /// Undulation amplitude, m.
    pub undulation_m: f64,
    /// Undulation wavelength, m.
    pub wavelength_m: f64,
}

impl Default for TerrainConfig {
    fn default() -> Self {
        Self { base_height_m: 35.0, slope: [0.012, -0.008], undulation_m: 1.5, wavelength_m: 420.0 }
    }
}

/// Paint geometry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarkingConfig {
    /// Line width, m.
    pub line_width_m: f64,
    /// Dash paint length, m.
    pub dash_m: f64,
    /// Gap between dashes, m.
    pub gap_m: f64,
    /// Gap between the two lines of a double line, m.
    pub double_gap_m: f64,
    /// Lane lines are solid this far from a junction, m.
    pub solid_near_junction_m: f64,
    /// Stop line width, m.
    pub stop_line_m: f64,
    /// Crosswalk width along the road (4–6 m).
    pub crosswalk_m: f64,
    /// Crosswalk stripe and gap width, m.
    pub crosswalk_stripe_m: f64,
    /// Distance from the stop line back to the lane arrows, m.
    pub arrow_setback_m: f64,
    /// Fraction of paint worn off on average (0–1).
    pub wear: f64,
}

impl Default for MarkingConfig {
    fn default() -> Self {
        Self {
            line_width_m: 0.15,
            dash_m: 3.0,
            gap_m: 5.0,
            double_gap_m: 0.12,
            solid_near_junction_m: 30.0,
            stop_line_m: 0.45,
            crosswalk_m: 5.0,
            crosswalk_stripe_m: 0.45,
            arrow_setback_m: 12.0,
            wear: 0.15,
        }
    }
}

/// Static scenery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SceneryConfig {
    /// Sidewalk width, m.
    pub sidewalk_m: f64,
    /// Kerb height, m.
    pub curb_height_m: f64,
    /// Building storeys range (3.2 m each); the tallest stand near junctions.
    pub storeys: [u32; 2],
    /// Street light spacing, m.
    pub pole_spacing_m: f64,
    /// Street tree spacing, m (0 = none).
    pub tree_spacing_m: f64,
    /// Parked cars per 100 m of kerb.
    pub parked_per_100m: f64,
}

impl Default for SceneryConfig {
    fn default() -> Self {
        Self {
            sidewalk_m: 3.5,
            curb_height_m: 0.15,
            storeys: [3, 18],
            pole_spacing_m: 30.0,
            tree_spacing_m: 14.0,
            parked_per_100m: 2.0,
        }
    }
}

/// Moving traffic.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficConfig {
    /// Cars per lane-km.
    pub cars_per_lane_km: f64,
    /// Share of cars that change lanes.
    pub lane_change_share: f64,
    /// Pedestrians per crosswalk.
    pub pedestrians_per_crosswalk: usize,
    /// Cyclists per km of road.
    pub cyclists_per_km: f64,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        Self {
            cars_per_lane_km: 12.0,
            lane_change_share: 0.3,
            pedestrians_per_crosswalk: 2,
            cyclists_per_km: 3.0,
        }
    }
}

/// Orthophoto and DSM.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrthoConfig {
    /// Ground sample distance, m.
    pub gsd_m: f64,
    /// DSM cell size, m.
    pub dsm_cell_m: f64,
    /// Sun azimuth (clockwise from north) and elevation, degrees.
    pub sun_deg: [f64; 2],
    /// Known georeferencing error of the orthophoto: the geotransform is shifted by this
    /// (east, north) in metres relative to the truth.
    pub georef_offset_m: [f64; 2],
    /// Width of a flight strip (radiometric variation between strips), m.
    pub strip_m: f64,
    /// JPEG quality of the compression round trip (0 = none).
    pub jpeg_quality: u8,
    /// Extra margin around the mapped area (roads, sidewalks and a 30 m building belt), m.
    pub margin_m: f64,
}

impl Default for OrthoConfig {
    fn default() -> Self {
        Self {
            gsd_m: 0.08,
            dsm_cell_m: 0.25,
            sun_deg: [155.0, 52.0],
            georef_offset_m: [0.11, -0.07],
            strip_m: 180.0,
            jpeg_quality: 88,
            margin_m: 0.0,
        }
    }
}

/// One turn decision of the drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Move {
    /// Straight through a junction.
    Straight,
    /// Left turn at a junction.
    Left,
    /// Right turn at a junction.
    Right,
    /// Turn around in a cul-de-sac.
    Uturn,
}

/// The MMS drive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveConfig {
    /// Road the drive starts on.
    pub start_road: String,
    /// Start at the road's far end (spurs: the cul-de-sac) driving toward its junction.
    pub start_inbound: bool,
    /// Decisions at each junction / dead end, in order.
    pub moves: Vec<Move>,
    /// Cruise speed, m/s.
    pub speed_mps: f64,
    /// Lateral acceleration limit in curves, m/s².
    pub lateral_accel_mps2: f64,
    /// True pose rate, Hz.
    pub pose_rate_hz: f64,
    /// Start time, s since the Unix epoch (UTC).
    pub start_unix_s: f64,
    /// Cap on the drive duration, s (0 = whole route).
    pub max_duration_s: f64,
    /// Seed of the drive's own randomness — traffic and parked cars, GNSS/INS errors, the
    /// driver's wander in the lane, LiDAR and camera noise — for a second drive through the same
    /// world (the world itself always follows the top-level `seed`). Absent: the world's seed.
    pub seed: Option<u64>,
}

impl Default for DriveConfig {
    fn default() -> Self {
        Self {
            start_road: "west".into(),
            start_inbound: true,
            moves: vec![Move::Straight, Move::Uturn, Move::Straight, Move::Uturn],
            speed_mps: 9.0,
            lateral_accel_mps2: 2.0,
            pose_rate_hz: 100.0,
            start_unix_s: 1_777_600_800.0,
            max_duration_s: 0.0,
            seed: None,
        }
    }
}

/// GNSS/INS error model (per axis: east, north, up).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GnssConfig {
    /// Open-sky error: stationary std of a Gauss–Markov bias, m (east/north, up).
    pub open_sky_std_m: [f64; 2],
    /// Correlation time of the open-sky bias, s.
    pub open_sky_tau_s: f64,
    /// Urban-canyon drift: stationary std at full canyon, m (east/north, up).
    pub canyon_std_m: [f64; 2],
    /// Correlation time of the canyon drift, s.
    pub canyon_tau_s: f64,
    /// Building elevation angle (degrees, mean of both sides) where canyon drift starts and
    /// where it is full.
    pub canyon_elevation_deg: [f64; 2],
    /// GNSS outages as `[start_s, duration_s]` from the drive start.
    pub outages: Vec<[f64; 2]>,
    /// Accelerometer bias that makes position drift during outages, m/s².
    pub outage_accel_bias_mps2: f64,
    /// Attitude error std (roll/pitch, yaw), degrees.
    pub attitude_std_deg: [f64; 2],
}

impl Default for GnssConfig {
    fn default() -> Self {
        Self {
            open_sky_std_m: [0.03, 0.05],
            open_sky_tau_s: 60.0,
            canyon_std_m: [1.2, 1.5],
            canyon_tau_s: 15.0,
            canyon_elevation_deg: [25.0, 55.0],
            outages: Vec::new(),
            outage_accel_bias_mps2: 0.02,
            attitude_std_deg: [0.01, 0.05],
        }
    }
}

/// The spinning LiDAR.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LidarConfig {
    /// Beams (32 or 64).
    pub beams: usize,
    /// Vertical field of view `[lowest, highest]`, degrees.
    pub vertical_fov_deg: [f64; 2],
    /// Azimuth step, degrees.
    pub azimuth_step_deg: f64,
    /// Rotation rate, Hz.
    pub rate_hz: f64,
    /// Range limits, m.
    pub range_m: [f64; 2],
    /// Range noise std, m.
    pub range_noise_m: f64,
    /// Write every n-th scan only (1 = all).
    pub keep_every: usize,
}

impl Default for LidarConfig {
    fn default() -> Self {
        Self {
            beams: 32,
            vertical_fov_deg: [-25.0, 15.0],
            azimuth_step_deg: 0.4,
            rate_hz: 10.0,
            range_m: [1.0, 100.0],
            range_noise_m: 0.02,
            keep_every: 1,
        }
    }
}

/// Camera 0 during the drive: how often it takes an image, and the light of the drive (the
/// light belongs to the drive: a second drive through the same world may be at another time of
/// day).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    /// Images per second along the drive (0 = none; the calibration captures are separate).
    pub rate_hz: f64,
    /// Scene brightness relative to overcast noon (1 = noon; dusk ≈ 0.45).
    pub light: f64,
    /// Exponent applied to normalised grey levels (1 = linear; above 1 darkens the mid-tones
    /// as an evening exposure does).
    pub gamma: f64,
    /// Share of windows lit from inside (0 by day; at dusk, some are).
    pub lit_windows: f64,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self { rate_hz: 0.0, light: 1.0, gamma: 1.0, lit_windows: 0.0 }
    }
}

/// Sensor mounting: the spec-sheet values and the true offsets from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RigConfig {
    /// Nominal `vehicle_from_lidar0` translation, m (vehicle: x forward, y left, z up from the
    /// ground under the rear axle).
    pub lidar_translation_m: [f64; 3],
    /// True minus nominal lidar translation, m.
    pub lidar_translation_error_m: [f64; 3],
    /// True lidar rotation error (roll, pitch, yaw), degrees.
    pub lidar_rotation_error_deg: [f64; 3],
    /// Nominal `vehicle_from_gnss` translation (INS reference point), m.
    pub gnss_translation_m: [f64; 3],
    /// True minus nominal GNSS translation, m.
    pub gnss_translation_error_m: [f64; 3],
    /// True LiDAR clock offset: stamps read `true_time + offset`, ns.
    pub lidar_time_offset_ns: i64,
    /// Nominal `vehicle_from_camera0` translation, m (camera looking forward, level).
    pub camera_translation_m: [f64; 3],
    /// True minus nominal camera translation, m.
    pub camera_translation_error_m: [f64; 3],
    /// True camera rotation error (about the vehicle's x, y, z), degrees.
    pub camera_rotation_error_deg: [f64; 3],
    /// True intrinsics of camera0.
    pub camera: hdmap_core::camera::CameraIntrinsics,
}

impl Default for RigConfig {
    fn default() -> Self {
        Self {
            lidar_translation_m: [1.30, 0.0, 1.95],
            lidar_translation_error_m: [0.024, -0.017, 0.011],
            lidar_rotation_error_deg: [0.35, -0.28, 0.62],
            gnss_translation_m: [0.0, 0.0, 1.60],
            gnss_translation_error_m: [0.012, 0.009, -0.006],
            lidar_time_offset_ns: 2_500_000,
            camera_translation_m: [1.80, 0.0, 1.55],
            camera_translation_error_m: [0.013, 0.018, -0.009],
            camera_rotation_error_deg: [0.42, -0.31, 0.55],
            camera: hdmap_core::camera::CameraIntrinsics {
                width: 1280,
                height: 720,
                fx: 905.0,
                fy: 903.5,
                cx: 641.2,
                cy: 359.4,
                distortion: hdmap_core::camera::Distortion::BrownConrady {
                    k1: -0.118,
                    k2: 0.052,
                    p1: 0.0006,
                    p2: -0.0004,
                    k3: 0.0,
                },
            },
        }
    }
}

impl SimConfig {
    /// The seed of the drive's randomness (`drive.seed`, else the world's `seed`).
    pub fn drive_seed(&self) -> u64 {
        self.drive.seed.unwrap_or(self.seed)
    }

    /// Checks ranges that serde cannot (lane counts, positive lengths, ...).
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.rig.camera;
        if c.width == 0
            || c.height == 0
            || !(c.fx > 0.0 && c.fy > 0.0)
            || !(c.cx.is_finite() && c.cy.is_finite())
        {
            return Err(format!(
                "rig.camera needs a positive size and focal lengths and a finite principal point (got {}×{} px, f {} {})",
                c.width, c.height, c.fx, c.fy
            ));
        }
        let n = &self.network;
        if n.grid[0] == 0 || n.grid[1] == 0 {
            return Err("network.grid needs at least one junction".into());
        }
        let lanes_ok = |l: usize| (1..=6).contains(&l);
        if !lanes_ok(n.lanes_east_west) || !lanes_ok(n.lanes_north_south) {
            return Err("lanes per direction must be 1–6".into());
        }
        if !(2.5..=4.5).contains(&n.lane_width_m) {
            return Err(format!("network.lane_width_m {} outside 2.5–4.5", n.lane_width_m));
        }
        for s in &n.spurs {
            if !lanes_ok(s.lanes) {
                return Err(format!("spur {}: lanes must be 1–6", s.name));
            }
            if s.junction[0] >= n.grid[0] || s.junction[1] >= n.grid[1] {
                return Err(format!("spur {}: junction {:?} outside the grid", s.name, s.junction));
            }
            if s.segments.is_empty() {
                return Err(format!("spur {}: no segments", s.name));
            }
            for seg in &s.segments {
                let len = match seg {
                    Segment::Line { length_m }
                    | Segment::Arc { length_m, .. }
                    | Segment::Clothoid { length_m, .. } => *length_m,
                };
                if !(len > 0.0 && len.is_finite()) {
                    return Err(format!("spur {}: segment length {len}", s.name));
                }
                if let Segment::Arc { radius_m, .. } = seg
                    && radius_m.abs() < 20.0
                {
                    return Err(format!("spur {}: arc radius {radius_m} m is tighter than 20 m", s.name));
                }
            }
        }
        if !(0.01..=1.0).contains(&self.ortho.gsd_m) {
            return Err(format!("ortho.gsd_m {} outside 0.01–1", self.ortho.gsd_m));
        }
        if !(self.lidar.beams >= 4 && self.lidar.beams <= 128) {
            return Err(format!("lidar.beams {} outside 4–128", self.lidar.beams));
        }
        if self.lidar.azimuth_step_deg <= 0.0 || self.lidar.rate_hz <= 0.0 {
            return Err("lidar azimuth step and rate must be positive".into());
        }
        let cam = &self.camera;
        if !(0.0..=30.0).contains(&cam.rate_hz)
            || !(0.05..=2.0).contains(&cam.light)
            || !(0.3..=3.0).contains(&cam.gamma)
            || !(0.0..=1.0).contains(&cam.lit_windows)
        {
            return Err(format!(
                "camera: rate_hz {} must be 0–30, light {} 0.05–2, gamma {} 0.3–3, lit_windows {} 0–1",
                cam.rate_hz, cam.light, cam.gamma, cam.lit_windows
            ));
        }
        if self.drive.speed_mps <= 0.0 || self.drive.pose_rate_hz < 10.0 {
            return Err("drive speed must be positive and pose rate ≥ 10 Hz".into());
        }
        Ok(())
    }
}
