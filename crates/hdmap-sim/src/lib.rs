//! # hdmap-sim — a simulated city with ground truth for every stage
//!
//! No open dataset has an orthophoto, an MMS drive and an HD map of the same place with
//! ground truth, so this crate builds one from a config (`configs/sim/*.toml`):
//!
//! * a road network in a real projected CRS (grid of signalized 4-way junctions, dead-end spurs
//!   of lines, arcs and clothoids, 1–6 lanes per direction, terrain varying by metres) with
//!   Korean-practice markings ([`network`]), kerbs, sidewalks, buildings, trees, poles, traffic
//!   lights and parked cars ([`scenery`]), and moving traffic ([`traffic`]);
//! * the ground-truth [`hdmap_core::RoadLayout`] (GeoJSON + GeoPackage);
//! * a true orthophoto and a DSM as GeoTIFFs ([`ortho`]) with a known georeferencing offset;
//! * an MMS drive ([`drive`]): true poses at 100 Hz, a GNSS/INS solution with bias random
//!   walk, urban-canyon drift and outages written as the INS CSV the pipeline reads, and a
//!   spinning LiDAR ([`lidar`]) ray-cast against the world with motion distortion, written as
//!   PCD scans with SemanticKITTI labels beside them; nominal and true rig files.
//!
//! Everything is seeded: the same config gives byte-identical files on any thread count.

pub mod camera;
pub mod config;
pub mod drive;
pub mod geom;
pub mod lidar;
pub mod network;
pub mod noise;
pub mod ortho;
pub mod preview;
pub mod scene;
pub mod scenery;
pub mod terrain;
pub mod traffic;

use std::path::{Path, PathBuf};

use hdmap_core::nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use hdmap_core::{Extrinsic, FrameId, GeoOrigin, Rig, StampedPose, Trajectory};
use hdmap_io::IoError;
use rayon::prelude::*;
use thiserror::Error;

pub use config::SimConfig;

/// Errors of the simulator.
#[derive(Debug, Error)]
pub enum SimError {
    /// The config is invalid (message says which key and why).
    #[error("invalid simulator config: {0}")]
    Config(String),
    /// A config file could not be read or parsed.
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing an output failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Rendering failed.
    #[error("rendering failed: {0}")]
    Render(String),
    /// A model invariant broke (a bug).
    #[error(transparent)]
    Core(#[from] hdmap_core::CoreError),
}

/// Reads and validates a simulator config (unknown keys are errors).
pub fn load_config(path: &Path) -> Result<SimConfig, SimError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SimError::ConfigFile { path: path.to_path_buf(), message: e.to_string() })?;
    let cfg: SimConfig = toml::from_str(&text).map_err(|e| SimError::ConfigFile {
        path: path.to_path_buf(),
        message: e.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
    })?;
    cfg.validate().map_err(|m| SimError::ConfigFile { path: path.to_path_buf(), message: m })?;
    Ok(cfg)
}

/// The simulated world in memory: what tests rebuild to check outputs against.
pub struct World {
    /// The config.
    pub cfg: SimConfig,
    /// Terrain, roads, static objects.
    pub scene: scene::Scene,
    /// Moving objects of the drive.
    pub movers: Vec<traffic::Mover>,
    /// Moving objects on the flight day (the world's own traffic: a second drive through the
    /// same world, `drive.seed`, leaves the orthophoto unchanged).
    pub movers_aerial: Vec<traffic::Mover>,
    /// Parked cars on the drive day.
    pub parked_drive: Vec<scene::Object>,
    /// Parked cars on the flight day.
    pub parked_aerial: Vec<scene::Object>,
    /// The drive path.
    pub route: drive::Route,
    /// True `world_from_vehicle` (local frame), stamps in ns from the drive start.
    pub vehicle_poses: Trajectory,
    /// True sensor mounting.
    pub rig_true: Rig,
    /// Spec-sheet sensor mounting.
    pub rig_nominal: Rig,
}

/// `vehicle_from_camera` rotation of a level, forward-looking camera: camera x right = −y_v,
/// y down = −z_v, z forward = x_v.
pub fn vehicle_from_camera_rotation() -> UnitQuaternion<f64> {
    let m = Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0);
    UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(m))
}

/// `vehicle_from_gnss` rotation: INS body x right, y forward, z up.
fn vehicle_from_gnss_rotation() -> UnitQuaternion<f64> {
    let m = Matrix3::new(0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0);
    UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(m))
}

fn rigs(cfg: &SimConfig) -> (Rig, Rig) {
    let r = &cfg.rig;
    let t = |v: [f64; 3]| Translation3::new(v[0], v[1], v[2]);
    let add3 = |a: [f64; 3], b: [f64; 3]| [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
    let e = r.lidar_rotation_error_deg;
    let lidar_err =
        UnitQuaternion::from_euler_angles(e[0].to_radians(), e[1].to_radians(), e[2].to_radians());
    let mk = |source, iso, offset| Extrinsic {
        target: FrameId::Vehicle,
        source,
        target_from_source: iso,
        covariance: None,
        time_offset_ns: offset,
    };
    let mut nominal = Rig::default();
    nominal.set(mk(
        FrameId::Lidar(0),
        Isometry3::from_parts(t(r.lidar_translation_m), UnitQuaternion::identity()),
        0,
    ));
    nominal.set(mk(
        FrameId::Gnss,
        Isometry3::from_parts(t(r.gnss_translation_m), vehicle_from_gnss_rotation()),
        0,
    ));
    nominal.set(mk(
        FrameId::Camera(0),
        Isometry3::from_parts(t(r.camera_translation_m), vehicle_from_camera_rotation()),
        0,
    ));
    let mut truth = Rig::default();
    let c = r.camera_rotation_error_deg;
    let camera_err =
        UnitQuaternion::from_euler_angles(c[0].to_radians(), c[1].to_radians(), c[2].to_radians());
    truth.set(mk(
        FrameId::Camera(0),
        Isometry3::from_parts(
            t(add3(r.camera_translation_m, r.camera_translation_error_m)),
            camera_err * vehicle_from_camera_rotation(),
        ),
        0,
    ));
    truth.set(mk(
        FrameId::Lidar(0),
        Isometry3::from_parts(t(add3(r.lidar_translation_m, r.lidar_translation_error_m)), lidar_err),
        r.lidar_time_offset_ns,
    ));
    truth.set(mk(
        FrameId::Gnss,
        Isometry3::from_parts(
            t(add3(r.gnss_translation_m, r.gnss_translation_error_m)),
            vehicle_from_gnss_rotation(),
        ),
        0,
    ));
    (nominal, truth)
}

impl World {
    /// Builds the world of a config (no files written).
    pub fn build(cfg: &SimConfig) -> Result<Self, SimError> {
        cfg.validate().map_err(SimError::Config)?;
        let terrain = terrain::Terrain::new(&cfg.terrain);
        let map = network::RoadMap::build(cfg, &terrain)?;
        let objects = scenery::static_objects(cfg, &map, &terrain);
        let parked_drive = scenery::parked_cars(cfg, &map, &terrain, "drive");
        let parked_aerial = scenery::parked_cars(cfg, &map, &terrain, "aerial");
        let movers = traffic::movers(cfg, &map);
        let movers_aerial = if cfg.drive.seed.is_some() {
            let mut world_only = cfg.clone();
            world_only.drive.seed = None;
            traffic::movers(&world_only, &map)
        } else {
            movers.clone()
        };
        let route = drive::build_route(cfg, &map)?;
        let truep = drive::true_poses(cfg, &route, &terrain);
        let poses: Vec<StampedPose> = truep
            .times
            .iter()
            .zip(&truep.poses)
            .map(|(t, p)| StampedPose {
                stamp_ns: hdmap_core::time::seconds_to_ns(*t),
                target_from_source: *p,
            })
            .collect();
        let vehicle_poses = Trajectory::new(FrameId::World, FrameId::Vehicle, poses)?;
        let scene = scene::Scene::new(terrain, map, objects, cfg.scenery.curb_height_m, cfg.seed);
        let (rig_nominal, rig_true) = rigs(cfg);
        Ok(Self {
            cfg: cfg.clone(),
            scene,
            movers,
            movers_aerial,
            parked_drive,
            parked_aerial,
            route,
            vehicle_poses,
            rig_true,
            rig_nominal,
        })
    }

    /// Absolute (CRS) version of a local pose.
    pub fn to_absolute(&self, p: &Isometry3<f64>) -> Isometry3<f64> {
        let o = self.cfg.origin.origin;
        Isometry3::from_parts(
            Translation3::from(p.translation.vector + Vector3::new(o[0], o[1], o[2])),
            p.rotation,
        )
    }

    /// Objects on the ground during the flight (parked cars and traffic at the flight time).
    pub fn aerial_objects(&self) -> Vec<scene::Object> {
        let t = Self::FLIGHT_TIME_S;
        let mut v = self.parked_aerial.clone();
        v.extend(self.movers_aerial.iter().map(|m| m.object(&self.scene.map, &self.scene.terrain, t)));
        v
    }

    /// Flight time relative to the drive start (a day earlier), s.
    pub const FLIGHT_TIME_S: f64 = -86_400.0 + 1234.5;

    /// Start times (s from the drive start) of the sweeps that are written.
    pub fn scan_starts(&self) -> Vec<f64> {
        let period = 1.0 / self.cfg.lidar.rate_hz;
        let total = self.vehicle_poses.duration_s();
        let n = ((total - period) / period).floor().max(0.0) as usize;
        (0..n).step_by(self.cfg.lidar.keep_every.max(1)).map(|i| i as f64 * period).collect()
    }

    /// The drive's origin (CRS and vertical datum).
    pub fn origin(&self) -> &GeoOrigin {
        &self.cfg.origin
    }
}

/// What a simulation wrote.
#[derive(Debug, Clone)]
pub struct SimSummary {
    /// Output directory.
    pub out: PathBuf,
    /// Road length, km.
    pub road_km: f64,
    /// Layout element count.
    pub layout_elements: usize,
    /// Drive duration, s.
    pub drive_s: f64,
    /// Drive length, m.
    pub drive_m: f64,
    /// Scans written.
    pub scans: usize,
    /// LiDAR points written.
    pub points: usize,
    /// Orthophoto size, px.
    pub ortho_px: (usize, usize),
    /// Largest horizontal GNSS/INS error, m.
    pub max_gnss_error_m: f64,
}

/// File names inside an output directory.
pub mod files {
    /// Effective config.
    pub const CONFIG: &str = "sim.toml";
    /// Ground-truth layout (GeoJSON).
    pub const LAYOUT_GEOJSON: &str = "truth/layout.geojson";
    /// Ground-truth layout (GeoPackage).
    pub const LAYOUT_GPKG: &str = "truth/layout.gpkg";
    /// True vehicle trajectory (pose CSV, `world_from_vehicle`, absolute CRS).
    pub const TRAJECTORY_TRUE: &str = "truth/trajectory_true.csv";
    /// True `world_from_lidar0` at each written scan's start.
    pub const SCAN_POSES_TRUE: &str = "truth/scan_poses_true.csv";
    /// True rig.
    pub const RIG_TRUE: &str = "truth/rig_true.toml";
    /// Orthophoto.
    pub const ORTHO: &str = "aerial/ortho.tif";
    /// DSM.
    pub const DSM: &str = "aerial/dsm.tif";
    /// Visible paint per orthophoto pixel (u8 GeoTIFF, `ortho::paint_label` classes): the
    /// ground truth of marking segmentation.
    pub const PAINT_LABELS: &str = "aerial/paint_labels.tif";
    /// INS solution (NovAtel-style CSV).
    pub const INS: &str = "drive/ins.csv";
    /// Spec-sheet rig.
    pub const RIG_NOMINAL: &str = "drive/rig_nominal.toml";
    /// LiDAR scans directory.
    pub const LIDAR_DIR: &str = "drive/lidar";
    /// Labels directory.
    pub const LABELS_DIR: &str = "drive/labels";
    /// Camera 0's images (`NNNNNN.png`), with `images.csv` (`stamp_ns,image`, the camera's
    /// clock, which runs on the INS's time in the simulator) and `camera.toml` (intrinsics,
    /// `hdmap_core::CameraIntrinsics`) beside them.
    pub const CAMERA_DIR: &str = "drive/camera0";
    /// True `world_from_camera0` at each image's stamp.
    pub const CAMERA_POSES_TRUE: &str = "truth/camera0_poses_true.csv";
}

fn world_from_gnss_true(world: &World) -> Result<Vec<Isometry3<f64>>, SimError> {
    let v_g = world.rig_true.transform(FrameId::Vehicle, FrameId::Gnss)?;
    Ok(world.vehicle_poses.poses.iter().map(|p| p.target_from_source * v_g).collect())
}

/// The simulated INS solution of a world (local frame).
pub fn ins_of(world: &World) -> Result<drive::InsSolution, SimError> {
    let times: Vec<f64> = world.vehicle_poses.poses.iter().map(|p| p.stamp_ns as f64 * 1e-9).collect();
    Ok(drive::ins_solution(&world.cfg, &times, &world_from_gnss_true(world)?, &world.scene.objects))
}

fn write_config_and_layout(cfg: &SimConfig, world: &World, out: &Path) -> Result<(), SimError> {
    let text = toml::to_string(cfg).map_err(|e| SimError::Config(e.to_string()))?;
    let cfg_path = out.join(files::CONFIG);
    hdmap_io::fsutil::write_atomic(&cfg_path, |w| {
        use std::io::Write;
        w.write_all(format!("# effective hdmap-sim config\n{text}").as_bytes())
            .map_err(|source| IoError::Os { path: cfg_path.clone(), source })
    })?;
    hdmap_io::layout::write_layout_geojson(&out.join(files::LAYOUT_GEOJSON), &world.scene.map.layout)?;
    hdmap_io::layout::write_layout_gpkg(&out.join(files::LAYOUT_GPKG), &world.scene.map.layout)?;
    Ok(())
}

fn write_aerial(cfg: &SimConfig, world: &World, out: &Path) -> Result<ortho::Extent, SimError> {
    let aerial = world.aerial_objects();
    let ext = ortho::write_orthophoto(
        cfg,
        &world.scene,
        &aerial,
        &out.join(files::ORTHO),
        &out.join(files::PAINT_LABELS),
    )?;
    ortho::write_dsm(cfg, &world.scene, &aerial, &out.join(files::DSM))?;
    Ok(ext)
}

/// Writes only the aerial products into `out`: effective config, ground-truth layout,
/// orthophoto with its paint labels, DSM (the scenes the layout stage trains and is tested
/// on). Returns road length (km) and orthophoto size (px).
pub fn simulate_aerial(cfg: &SimConfig, out: &Path) -> Result<(f64, (usize, usize)), SimError> {
    for d in ["truth", "aerial"] {
        let p = out.join(d);
        std::fs::create_dir_all(&p).map_err(|source| IoError::Os { path: p.clone(), source })?;
    }
    let world = World::build(cfg)?;
    write_config_and_layout(cfg, &world, out)?;
    let ext = write_aerial(cfg, &world, out)?;
    Ok((world.scene.map.total_length() / 1000.0, (ext.width, ext.height)))
}

/// Runs the whole simulation into `out`. `progress(stage, done, total)` reports long steps.
pub fn simulate(
    cfg: &SimConfig,
    out: &Path,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<SimSummary, SimError> {
    fn io(p: &Path) -> impl Fn(std::io::Error) -> IoError + '_ {
        move |source| IoError::Os { path: p.to_path_buf(), source }
    }
    for d in ["truth", "aerial", "drive/lidar", "drive/labels"] {
        let p = out.join(d);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    let world = World::build(cfg)?;
    progress("layout", 0, 1);
    write_config_and_layout(cfg, &world, out)?;
    // Rigs.
    hdmap_io::rig::write_rig(
        &out.join(files::RIG_TRUE),
        &world.rig_true,
        "true mounting of the simulated vehicle (ground truth)",
    )?;
    hdmap_io::rig::write_rig(
        &out.join(files::RIG_NOMINAL),
        &world.rig_nominal,
        "nominal mounting from the vehicle spec sheet",
    )?;
    // Trajectories.
    let start_ns = hdmap_core::time::seconds_to_ns(cfg.drive.start_unix_s);
    let absolute = |poses: Vec<StampedPose>, source: FrameId| -> Result<Trajectory, SimError> {
        let mut t = Trajectory::new(FrameId::World, source, poses)?;
        t.origin = Some(cfg.origin.clone());
        Ok(t)
    };
    let true_abs: Vec<StampedPose> = world
        .vehicle_poses
        .poses
        .iter()
        .map(|p| StampedPose {
            stamp_ns: start_ns + p.stamp_ns,
            target_from_source: world.to_absolute(&p.target_from_source),
        })
        .collect();
    hdmap_io::trajectory::write_pose_csv(
        &out.join(files::TRAJECTORY_TRUE),
        &absolute(true_abs, FrameId::Vehicle)?,
    )?;
    let ins = ins_of(&world)?;
    let ins_traj: Vec<StampedPose> = world
        .vehicle_poses
        .poses
        .iter()
        .zip(&ins.poses)
        .map(|(p, q)| StampedPose {
            stamp_ns: start_ns + p.stamp_ns,
            target_from_source: world.to_absolute(q),
        })
        .collect();
    let max_err = ins.position_error.iter().map(|e| e[0].hypot(e[1])).fold(0.0, f64::max);
    let mut ins_trajectory = Trajectory::new(FrameId::World, FrameId::Gnss, ins_traj)?;
    ins_trajectory.origin = Some(cfg.origin.clone());
    hdmap_io::trajectory::write_ins_csv(
        &out.join(files::INS),
        &hdmap_io::trajectory::InsSolution {
            trajectory: ins_trajectory,
            velocity_enu_mps: ins.velocity.clone(),
            position_std_m: Some(ins.position_std.clone()),
            attitude_std_rad: Some(ins.attitude_std.clone()),
        },
    )?;
    // Orthophoto and DSM.
    progress("orthophoto", 0, 1);
    let ext = write_aerial(cfg, &world, out)?;
    // LiDAR.
    let v_l = world.rig_true.transform(FrameId::Vehicle, FrameId::Lidar(0))?;
    let offset_s = cfg.rig.lidar_time_offset_ns as f64 * 1e-9;
    let starts = world.scan_starts();
    let total = starts.len();
    let mut scan_poses = Vec::new();
    let mut points = 0usize;
    for (chunk_i, chunk) in starts.chunks(16).enumerate() {
        let results: Vec<Result<(usize, StampedPose), SimError>> = chunk
            .par_iter()
            .enumerate()
            .map(|(j, &start)| {
                let index = chunk_i * 16 + j;
                let scan = lidar::simulate_scan(
                    &cfg.lidar,
                    cfg.drive_seed(),
                    &world.scene,
                    &world.movers,
                    &world.parked_drive,
                    &world.vehicle_poses,
                    &v_l,
                    index,
                    start,
                    (cfg.drive.start_unix_s, offset_s),
                )?;
                let name = format!("{index:06}");
                hdmap_io::pcd::write_pcd(
                    &out.join(files::LIDAR_DIR).join(format!("{name}.pcd")),
                    &scan.cloud,
                    &hdmap_io::pcd::PcdWriteOptions::new(hdmap_io::pcd::PcdEncoding::BinaryCompressed),
                )?;
                hdmap_io::labels::write_labels(
                    &out.join(files::LABELS_DIR).join(format!("{name}.label")),
                    &scan.labels,
                )?;
                let rel = hdmap_core::time::seconds_to_ns(start);
                let pose = world.vehicle_poses.interpolate(rel)? * v_l;
                Ok((
                    scan.cloud.len(),
                    StampedPose { stamp_ns: start_ns + rel, target_from_source: world.to_absolute(&pose) },
                ))
            })
            .collect();
        for r in results {
            let (n, pose) = r?;
            points += n;
            scan_poses.push(pose);
        }
        progress("lidar", (chunk_i * 16 + chunk.len()).min(total), total);
    }
    if !scan_poses.is_empty() {
        hdmap_io::trajectory::write_pose_csv(
            &out.join(files::SCAN_POSES_TRUE),
            &absolute(scan_poses, FrameId::Lidar(0))?,
        )?;
    }
    // Camera 0.
    let times = camera::frame_times(&world);
    if !times.is_empty() {
        let dir = out.join(files::CAMERA_DIR);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut rows = Vec::with_capacity(times.len());
        let mut poses = Vec::with_capacity(times.len());
        for (i, &t) in times.iter().enumerate() {
            let (image, world_from_camera) = camera::drive_frame(&world, t, i)?;
            let name = format!("{i:06}.png");
            hdmap_io::image::write_png(&dir.join(&name), &image::DynamicImage::ImageLuma8(image))?;
            let stamp_ns = start_ns + hdmap_core::time::seconds_to_ns(t);
            rows.push((stamp_ns, name));
            poses.push(StampedPose { stamp_ns, target_from_source: world.to_absolute(&world_from_camera) });
            progress("camera", i + 1, times.len());
        }
        hdmap_io::camera_records::write_camera_folder(&dir, &cfg.rig.camera, &rows)?;
        hdmap_io::trajectory::write_pose_csv(
            &out.join(files::CAMERA_POSES_TRUE),
            &absolute(poses, FrameId::Camera(0))?,
        )?;
    }
    Ok(SimSummary {
        out: out.to_path_buf(),
        road_km: world.scene.map.total_length() / 1000.0,
        layout_elements: world.scene.map.layout.element_count(),
        drive_s: world.vehicle_poses.duration_s(),
        drive_m: drive::route_length(&world.route),
        scans: total,
        points,
        ortho_px: (ext.width, ext.height),
        max_gnss_error_m: max_err,
    })
}
