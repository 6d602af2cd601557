//! hdmap-pipeline: one TOML config, the stages in order, a job directory that resumes.
//!
//! [`run`] runs `sim` (when the config asks for a simulated scenario), `layout` (orthophoto →
//! road layout), `register` (drive onto the layout), `clean` (traffic out of the cloud) and `export` (every layer, the Autoware
//! directory) into `<job>/<stage>/`. This is the only crate that knows the stage order.
//!
//! Every stage directory carries a `manifest.json`: the hdmap version, the SHA-256 of the
//! stage's config section and of every input file, and the SHA-256 of every output. A stage
//! whose manifest matches its current inputs and whose outputs are intact is skipped. A stage
//! runs into `<job>/.<stage>.partial/` and is renamed into place only when its manifest is
//! written, so a run killed at any moment (even `kill -9`) leaves complete stages and a
//! partial directory the next run discards: resuming gives the same bytes as an uninterrupted
//! run, because every stage is deterministic for its inputs and config.
//!
//! The effective config (every default filled in) is written to `<job>/config.toml`. Each run
//! ends by rebuilding `<job>/report/` ([`report`]): the layout over the orthophoto, the cloud,
//! the registration's paint residuals, per-stage metrics and timings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdmap_core::{FrameId, Issues, VerticalDatum};
use hdmap_export::ExportConfig;
use hdmap_io::IoError;
use hdmap_layout::LayoutConfig;
use hdmap_register::drive::RegisterConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod publish;
pub mod report;

/// The whole job: where it goes, what it reads, one section per stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Where the job's outputs go.
    pub job: JobConfig,
    /// What the job reads.
    pub inputs: InputsConfig,
    /// Layout extraction (`hdmap layout`).
    #[serde(default)]
    pub layout: LayoutConfig,
    /// Registration (`hdmap register`).
    #[serde(default)]
    pub register: RegisterConfig,
    /// Dynamic-object removal (`hdmap clean`).
    #[serde(default)]
    pub clean: hdmap_dynamic::CleanConfig,
    /// Export (`hdmap export`).
    #[serde(default)]
    pub export: ExportConfig,
    /// Feature maps for localization, written by the export stage (`export/ndt_map/`).
    #[serde(default)]
    pub features: hdmap_features::FeaturesConfig,
}

/// `[job]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Job directory; relative paths are relative to the config file's folder.
    pub dir: PathBuf,
}

/// `[inputs]`: either a simulator scenario to generate, or real data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsConfig {
    /// A `hdmap sim` scenario (configs/sim/*.toml) generated into `<job>/sim`; the orthophoto,
    /// DSM and drive below then default to its outputs.
    pub simulate: Option<PathBuf>,
    /// RGB orthophoto (GeoTIFF with a CRS).
    pub ortho: Option<PathBuf>,
    /// Surface model in the orthophoto's CRS.
    pub dsm: Option<PathBuf>,
    /// Drive directory (`lidar/*.pcd`, `ins.csv`, `rig.toml` or `rig_nominal.toml`).
    pub drive: Option<PathBuf>,
    /// Datum of the DSM heights (and so of every height in the map). Required.
    pub vertical_datum: VerticalDatum,
}

/// The stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Simulate the scenario (only with `inputs.simulate`).
    Sim,
    /// Orthophoto → road layout.
    Layout,
    /// Drive → registered trajectory and cloud.
    Register,
    /// Registered cloud → static cloud (cars, people and cyclists removed).
    Clean,
    /// Layers, Autoware directory.
    Export,
    /// `report/index.html` with figures, metrics and timings (rebuilt every run).
    Report,
}

impl Stage {
    /// Directory name under the job.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Sim => "sim",
            Stage::Layout => "layout",
            Stage::Register => "register",
            Stage::Clean => "clean",
            Stage::Export => "export",
            Stage::Report => "report",
        }
    }
}

/// What happened to one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageReport {
    /// The stage.
    pub stage: Stage,
    /// True when its outputs were up to date and it did not run.
    pub skipped: bool,
    /// Wall time, seconds (0 when skipped).
    pub seconds: f64,
    /// Its directory.
    pub dir: PathBuf,
    /// One line on what it produced.
    pub summary: String,
}

/// Errors of a pipeline run; each names the stage or file.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The config file cannot be read or is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A stage failed.
    #[error("stage {stage}: {message}")]
    Stage {
        /// Stage name.
        stage: &'static str,
        /// The stage's error, one line.
        message: String,
    },
    /// Reading or writing the job directory failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A config read from its file, with paths resolved against the file's folder.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The config.
    pub config: PipelineConfig,
    /// The config file.
    pub path: PathBuf,
    /// Its folder (base of relative paths).
    pub base: PathBuf,
}

impl LoadedConfig {
    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.base.join(p) }
    }

    /// The job directory.
    pub fn job_dir(&self) -> PathBuf {
        self.resolve(&self.config.job.dir)
    }

    /// The orthophoto, DSM and drive the stages read.
    fn inputs(&self) -> (PathBuf, Option<PathBuf>, PathBuf) {
        let i = &self.config.inputs;
        let sim = self.job_dir().join(Stage::Sim.name());
        let ortho =
            i.ortho.as_ref().map(|p| self.resolve(p)).unwrap_or_else(|| sim.join(hdmap_sim::files::ORTHO));
        let dsm = match (&i.dsm, &i.simulate) {
            (Some(p), _) => Some(self.resolve(p)),
            (None, Some(_)) => Some(sim.join(hdmap_sim::files::DSM)),
            (None, None) => None,
        };
        let drive = i.drive.as_ref().map(|p| self.resolve(p)).unwrap_or_else(|| sim.join("drive"));
        (ortho, dsm, drive)
    }
}

/// Reads and checks a pipeline config: unknown keys, a missing `vertical_datum`, neither a
/// scenario nor an orthophoto and drive, and invalid stage settings are errors naming the file.
pub fn load_config(path: &Path) -> Result<LoadedConfig, PipelineError> {
    let err = |message: String| PipelineError::Config { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let config: PipelineConfig = toml::from_str(&text).map_err(|e| err(e.to_string().replace('\n', " ")))?;
    let i = &config.inputs;
    if i.simulate.is_none() && (i.ortho.is_none() || i.drive.is_none()) {
        return Err(err("[inputs] needs `simulate`, or `ortho` and `drive`".into()));
    }
    config.layout.validate().map_err(|m| err(format!("[layout] {m}")))?;
    config.register.validate().map_err(|m| err(format!("[register] {m}")))?;
    config.clean.validate().map_err(|m| err(format!("[clean] {m}")))?;
    config.export.validate().map_err(|e| err(format!("[export] {e}")))?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    Ok(LoadedConfig { config, path: path.to_path_buf(), base })
}

fn sha256_file(path: &Path) -> Result<String, IoError> {
    use std::io::Read;
    let os = |source| IoError::Os { path: path.to_path_buf(), source };
    let mut f = std::fs::File::open(path).map_err(os)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(os)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Every file under `dir` (recursively), relative paths with `/`, sorted.
fn files_under(dir: &Path) -> Result<Vec<String>, IoError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| IoError::Os { path: d.clone(), source })?;
        for e in rd {
            let e = e.map_err(|source| IoError::Os { path: d.clone(), source })?;
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// SHA-256 of each input: a file, or every file of a directory (as `dir/rel`). Inputs inside
/// the job are named relative to it, so that a job's manifests do not depend on where it is.
fn hash_inputs(job: &Path, inputs: &[PathBuf]) -> Result<BTreeMap<String, String>, IoError> {
    let name = |p: &Path| p.strip_prefix(job).unwrap_or(p).display().to_string().replace('\\', "/");
    let mut out = BTreeMap::new();
    for p in inputs {
        if p.is_dir() {
            for rel in files_under(p)? {
                out.insert(format!("{}/{rel}", name(p)), sha256_file(&p.join(&rel))?);
            }
        } else {
            hdmap_io::fsutil::check_input_file(p)?;
            out.insert(name(p), sha256_file(p)?);
        }
    }
    Ok(out)
}

const MANIFEST: &str = "manifest.json";

/// `<job>/<stage>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stage name.
    pub stage: String,
    /// hdmap version that wrote it.
    pub hdmap_version: String,
    /// SHA-256 of the stage's config section (TOML of the effective values).
    pub config_sha256: String,
    /// SHA-256 of every input file.
    pub inputs: BTreeMap<String, String>,
    /// SHA-256 of every output file, paths relative to the stage directory.
    pub outputs: BTreeMap<String, String>,
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether `dir` holds exactly what `want` says, outputs intact.
fn up_to_date(dir: &Path, want: &Manifest) -> bool {
    let Some(have) = read_manifest(dir) else { return false };
    if have.stage != want.stage
        || have.hdmap_version != want.hdmap_version
        || have.config_sha256 != want.config_sha256
        || have.inputs != want.inputs
    {
        return false;
    }
    have.outputs.iter().all(|(rel, sha)| sha256_file(&dir.join(rel)).is_ok_and(|s| &s == sha))
}

fn toml_sha<T: Serialize>(v: &T) -> String {
    let text = toml::to_string(v).unwrap_or_default();
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// The export stage's LiDAR localization layer (`hdmap_io::ndt`), inside `export/`.
pub const NDT_DIR: &str = "ndt_map";
/// The visual layer's folder in `export/` (kapture 1.1 + hdmap_visual.json).
pub const VISUAL_DIR: &str = "visual_map";

/// Maps an I/O error to one naming `path`.
pub(crate) fn os(path: &Path) -> impl Fn(std::io::Error) -> IoError + '_ {
    move |source| IoError::Os { path: path.to_path_buf(), source }
}

/// An empty directory at `path` (a stale one from a killed run is removed first).
pub(crate) fn fresh_dir(path: &Path) -> Result<PathBuf, IoError> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(os(path))?;
    }
    std::fs::create_dir_all(path).map_err(os(path))?;
    Ok(path.to_path_buf())
}

/// Puts the finished `partial` directory in place of `dir`: the old one is moved aside first
/// and removed last, so `dir` is always either the old or the new whole.
pub(crate) fn swap_dir(partial: &Path, dir: &Path) -> Result<(), IoError> {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let old = dir.with_file_name(format!(".{name}.old"));
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(os(&old))?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(os(dir))?;
    }
    std::fs::rename(partial, dir).map_err(os(dir))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(os(&old))?;
    }
    Ok(())
}

fn stage_err(stage: Stage) -> impl Fn(String) -> PipelineError {
    move |message| PipelineError::Stage { stage: stage.name(), message }
}

/// Runs one stage unless it is up to date: `work` fills the partial directory and returns a
/// summary line; the manifest is written last and the directory renamed into place.
fn run_stage(
    job: &Path,
    stage: Stage,
    config_sha256: String,
    inputs: &[PathBuf],
    progress: &mut dyn FnMut(Stage, &str),
    work: impl FnOnce(&Path) -> Result<String, PipelineError>,
) -> Result<StageReport, PipelineError> {
    let dir = job.join(stage.name());
    let mut want = Manifest {
        stage: stage.name().into(),
        hdmap_version: env!("CARGO_PKG_VERSION").into(),
        config_sha256,
        inputs: hash_inputs(job, inputs)?,
        outputs: BTreeMap::new(),
    };
    if up_to_date(&dir, &want) {
        progress(stage, "up to date");
        return Ok(StageReport { stage, skipped: true, seconds: 0.0, dir, summary: "up to date".into() });
    }
    let partial = fresh_dir(&job.join(format!(".{}.partial", stage.name())))?;
    progress(stage, "running");
    let start = std::time::Instant::now();
    let summary = work(&partial)?;
    for rel in files_under(&partial)? {
        want.outputs.insert(rel.clone(), sha256_file(&partial.join(&rel))?);
    }
    let text = serde_json::to_string_pretty(&want).map_err(|e| stage_err(stage)(e.to_string()))?;
    hdmap_io::fsutil::write_bytes_atomic(&partial.join(MANIFEST), text.as_bytes())?;
    swap_dir(&partial, &dir)?;
    let seconds = start.elapsed().as_secs_f64();
    report::record_timing(job, stage, seconds, &summary)?;
    progress(stage, &summary);
    Ok(StageReport { stage, skipped: false, seconds, dir, summary })
}

/// Runs the job of `config` (see the crate docs). `progress` hears each stage start, skip and
/// finish. Findings the map can live with go to `issues`.
pub fn run(
    config: &LoadedConfig,
    progress: &mut dyn FnMut(Stage, &str),
    issues: &mut Issues,
) -> Result<Vec<StageReport>, PipelineError> {
    let job = config.job_dir();
    std::fs::create_dir_all(&job).map_err(|source| IoError::Os { path: job.clone(), source })?;
    let effective = toml::to_string(&config.config)
        .map_err(|e| PipelineError::Config { path: config.path.clone(), message: e.to_string() })?;
    hdmap_io::fsutil::write_bytes_atomic(&job.join("config.toml"), effective.as_bytes())?;
    let c = &config.config;
    let mut reports = Vec::new();

    if let Some(scenario) = &c.inputs.simulate {
        let scenario = config.resolve(scenario);
        let sim_cfg = hdmap_sim::load_config(&scenario).map_err(|e| stage_err(Stage::Sim)(e.to_string()))?;
        reports.push(run_stage(&job, Stage::Sim, toml_sha(&sim_cfg), &[scenario], progress, |out| {
            let s = hdmap_sim::simulate(&sim_cfg, out, |_, _, _| {})
                .map_err(|e| stage_err(Stage::Sim)(e.to_string()))?;
            Ok(format!("{} layout elements, {} scans", s.layout_elements, s.scans))
        })?);
    }
    let (ortho, dsm, drive) = config.inputs();

    let mut layout_inputs = vec![ortho.clone()];
    layout_inputs.extend(dsm.clone());
    let datum = c.inputs.vertical_datum;
    let layout_sha = toml_sha(&(&c.layout, datum.to_string()));
    let mut stage_issues = Issues::new();
    reports.push(run_stage(&job, Stage::Layout, layout_sha, &layout_inputs, progress, |out| {
        let err = stage_err(Stage::Layout);
        let layout =
            hdmap_layout::extract_layout(&ortho, dsm.as_deref(), datum, &c.layout, &mut stage_issues)
                .map_err(|e| err(e.to_string()))?;
        hdmap_io::layout::write_layout_gpkg(&out.join("layout.gpkg"), &layout)?;
        hdmap_io::layout::write_layout_geojson(&out.join("layout.geojson"), &layout)?;
        Ok(format!("{} lane boundaries, {} lanes", layout.lane_boundaries.len(), layout.lanes.len()))
    })?);
    let layout_path = job.join(Stage::Layout.name()).join("layout.gpkg");

    reports.push(run_stage(
        &job,
        Stage::Register,
        toml_sha(&c.register),
        &[drive.clone(), layout_path.clone()],
        progress,
        |out| {
            let err = stage_err(Stage::Register);
            let layout = hdmap_io::layout::read_layout_gpkg(&layout_path)?;
            let constraints = hdmap_register::drive::Constraints::Layout;
            let r =
                hdmap_register::output::register_drive(&drive, None, &layout, constraints, &c.register, out)
                    .map_err(|e| err(e.to_string()))?;
            Ok(format!("{} keyframes, {} cloud points", r.keyframes, r.cloud_points))
        },
    )?);
    let registered = job.join(Stage::Register.name());
    let registered_cloud = registered.join(hdmap_register::output::files::CLOUD);
    let trajectory = registered.join(hdmap_register::output::files::TRAJECTORY);

    // The model's weights path is relative to the config file; weights and card are inputs.
    let mut clean_cfg = c.clean.clone();
    clean_cfg.model.weights = clean_cfg.model.weights.as_deref().map(|p| config.resolve(p));
    let mut clean_inputs = vec![registered_cloud.clone(), trajectory.clone()];
    if let Some(w) = &clean_cfg.model.weights {
        clean_inputs.extend([
            w.clone(),
            hdmap_dynamic::model::card_path(w),
            registered.join(hdmap_register::output::files::CLOUD_SOURCE),
            drive.join("lidar"),
        ]);
    }
    reports.push(run_stage(&job, Stage::Clean, toml_sha(&c.clean), &clean_inputs, progress, |out| {
        let err = stage_err(Stage::Clean);
        // The model labels the raw scans, tied to the cloud by register's provenance.
        let provenance = match clean_cfg.model.weights {
            Some(_) => {
                Some(hdmap_register::output::read_provenance(&registered).map_err(|e| err(e.to_string()))?)
            }
            None => None,
        };
        let lidar_dir = drive.join("lidar");
        let source = provenance.as_ref().map(|(scan_files, bytes)| hdmap_dynamic::ScanSource {
            lidar_dir: &lidar_dir,
            scan_files,
            provenance: bytes,
        });
        let run =
            hdmap_dynamic::clean_files(&registered_cloud, &trajectory, source.as_ref(), out, &clean_cfg)
                .map_err(|e| err(e.to_string()))?;
        let r = run.report;
        Ok(format!("{} of {} points removed over {} scans", r.removed, r.points, r.scans))
    })?);
    let cloud_path = job.join(Stage::Clean.name()).join(hdmap_dynamic::files::STATIC);

    // Paths in [export] are relative to the config file; the geoid grid is an input.
    let mut export_cfg = c.export.clone();
    export_cfg.ngii.geoid_grid = export_cfg.ngii.geoid_grid.as_deref().map(|p| config.resolve(p));
    let mut export_inputs = vec![layout_path.clone(), cloud_path.clone()];
    export_inputs.extend(export_cfg.ngii.geoid_grid.clone());
    // The visual layer: the drive's camera images placed with the registered trajectory.
    let camera_dir = drive.join("camera0");
    let camera_rig = camera_dir
        .join(hdmap_io::camera_records::IMAGES_CSV)
        .is_file()
        .then(|| hdmap_io::rig::drive_rig_path(&drive, None))
        .transpose()?;
    if let Some(rig_path) = &camera_rig {
        // The rig places the camera on the registered LiDAR: a change to it alone must rebuild.
        export_inputs.extend([camera_dir.clone(), trajectory.clone(), rig_path.clone()]);
    }
    #[derive(Serialize)]
    struct ExportSection<'a> {
        export: &'a ExportConfig,
        features: &'a hdmap_features::FeaturesConfig,
    }
    let export_sha = toml_sha(&ExportSection { export: &c.export, features: &c.features });
    reports.push(run_stage(&job, Stage::Export, export_sha, &export_inputs, progress, |out| {
        let err = stage_err(Stage::Export);
        let layout = hdmap_io::layout::read_layout_gpkg(&layout_path)?;
        let cloud = hdmap_io::las::read_las(&cloud_path, |_| {})?.cloud;
        let s = hdmap_export::export_map(out, &layout, Some(&cloud), &export_cfg, &mut stage_issues)
            .map_err(|e| err(e.to_string()))?;
        // The LiDAR localization layer, in the layout's map frame.
        let o = layout.origin.origin;
        let pts: Vec<[f64; 3]> =
            cloud.positions.iter().map(|p| [p[0] - o[0], p[1] - o[1], p[2] - o[2]]).collect();
        let ndt = hdmap_features::build_ndt(&pts, &layout.origin, &c.features.ndt)
            .map_err(|e| err(e.to_string()))?;
        hdmap_io::ndt::write_ndt(&out.join(NDT_DIR), &ndt, c.features.ndt.tile_m)?;
        let visual = if let Some(rig_path) = &camera_rig {
            let rig = hdmap_io::rig::read_rig(rig_path)?;
            let traj = hdmap_io::trajectory::read_pose_csv(&trajectory, FrameId::World, FrameId::Lidar(0))?;
            let (map, stats, skipped) = hdmap_features::visual::build_visual_from_folder(
                &camera_dir,
                &traj,
                &rig,
                &layout.origin,
                &c.features.visual,
            )
            .map_err(|e| err(e.to_string()))?;
            hdmap_features::visual::write_visual(&out.join(VISUAL_DIR), &map)?;
            let left_out = if skipped > 0 { format!(" ({skipped} outside the trajectory left out)") } else { String::new() };
            format!(", {} visual points from {} images{left_out}", stats.points, stats.images)
        } else {
            String::new()
        };
        Ok(format!(
            "{} lanelets, {} OpenDRIVE roads, {} NGII shapefiles, {} LAZ tiles, {} PCD tiles, {} NDT voxels{visual}",
            s.lanelet2.lanelets,
            s.opendrive.roads,
            s.ngii.layers.len(),
            s.laz_tiles.len(),
            s.autoware.tiles.len(),
            ndt.cells.len()
        ))
    })?);
    issues.extend(stage_issues);
    progress(Stage::Report, "running");
    let start = std::time::Instant::now();
    let r = report::write_report(config, &reports, issues)?;
    let summary = match &r.paint {
        Some(p) => format!(
            "{} figures; paint points to layout median {:.1} cm, p95 {:.1} cm",
            r.figures.len(),
            p.median_cm,
            p.p95_cm
        ),
        None => format!("{} figures", r.figures.len()),
    };
    progress(Stage::Report, &summary);
    reports.push(StageReport {
        stage: Stage::Report,
        skipped: false,
        seconds: start.elapsed().as_secs_f64(),
        dir: job.join(report::REPORT_DIR),
        summary,
    });
    Ok(reports)
}
