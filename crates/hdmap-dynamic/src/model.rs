//! The segmentation model: a small range-image U-Net (tch) that labels every LiDAR point of a
//! scan as static, ground, or one of the movable classes, trained by [`train`] on simulated
//! labelled scans (`hdmap train dynamic`).
//!
//! * **Input.** A scan in its sensor frame, projected spherically to a `rows × cols` image (row
//!   from the elevation within the card's vertical field of view, column from the azimuth); a
//!   pixel holds its nearest point. Five channels: range / 20 m, x / 20 m, y / 20 m, z / 2 m and
//!   a 0/1 mask of filled pixels (empty pixels are all zero). Intensity is not used: it is not
//!   comparable between sensors.
//! * **Network** (`rangeunet3`): as SalsaNext / RangeNet, an encoder–decoder over the range
//!   image: `hdmap_nn::UNet3` (three 2 × 2 down-sampling levels with 8·w, 16·w, 32·w channels,
//!   a bottleneck, three up-sampling levels with skip connections, each level two 3 × 3 conv +
//!   batch norm + ReLU) with a 1 × 1 head of one logit per [`MovableClass`]. Rows are padded
//!   with empty pixels to a multiple of 8; the columns are a multiple of 8.
//! * **Output.** Per point, the class of its pixel and the probability that it is movable (the
//!   sum of the movable classes' softmax).
//! * **Files.** Native weights are safetensors (`VarStore::save`) with a TOML card beside them
//!   (same stem) recording the projection, width, classes, validation IoU and the command that
//!   trained them. A TorchScript file (`.pt`, e.g. from `torch.jit.save` in PyTorch, or
//!   [`Model::save_torchscript`]) is accepted in place of the weights: its card (same stem,
//!   `.toml`, `architecture = "torchscript"`) gives the projection and classes; its `forward`
//!   takes `N × 5 × rows × cols` float32 and returns `N × classes × rows × cols` logits.
//! * **Device.** CUDA when tch sees a GPU, the CPU otherwise.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hdmap_core::SemanticClass;
use hdmap_nn::UNet3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::DynamicError;

/// What the model tells apart. `Static` and `Ground` stay in the map; the rest may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum MovableClass {
    /// Buildings, fences, poles, signs, vegetation, trunks.
    Static = 0,
    /// Road, parking, sidewalk, lane markings, terrain, other ground.
    Ground = 1,
    /// Cars (parked or moving).
    Car = 2,
    /// Trucks and buses.
    Truck = 3,
    /// People on foot.
    Pedestrian = 4,
    /// People on bicycles or motorcycles.
    Cyclist = 5,
    /// Other vehicles, parked bicycles.
    OtherMovable = 6,
}

impl MovableClass {
    /// Every class, in code order.
    pub const ALL: [MovableClass; 7] = [
        MovableClass::Static,
        MovableClass::Ground,
        MovableClass::Car,
        MovableClass::Truck,
        MovableClass::Pedestrian,
        MovableClass::Cyclist,
        MovableClass::OtherMovable,
    ];

    /// Whether objects of this class can move.
    pub fn movable(self) -> bool {
        (self as u8) >= 2
    }

    /// The class of a code (as stored in `classes.u8`).
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(code as usize).copied()
    }

    /// The name (as in the card and the reports).
    pub fn name(self) -> &'static str {
        match self {
            MovableClass::Static => "static",
            MovableClass::Ground => "ground",
            MovableClass::Car => "car",
            MovableClass::Truck => "truck",
            MovableClass::Pedestrian => "pedestrian",
            MovableClass::Cyclist => "cyclist",
            MovableClass::OtherMovable => "other_movable",
        }
    }

    /// The training class of a SemanticKITTI class (`None`: unlabelled, ignored in training).
    pub fn of_semantic(c: SemanticClass) -> Option<Self> {
        use SemanticClass as S;
        Some(match c {
            S::Unlabeled => return None,
            S::Car | S::MovingCar => MovableClass::Car,
            S::Truck | S::MovingTruck => MovableClass::Truck,
            S::Person | S::MovingPerson => MovableClass::Pedestrian,
            S::Bicyclist | S::MovingBicyclist => MovableClass::Cyclist,
            S::Bicycle | S::OtherVehicle => MovableClass::OtherMovable,
            S::Road | S::Parking | S::Sidewalk | S::OtherGround | S::LaneMarking | S::Terrain => {
                MovableClass::Ground
            }
            S::Building | S::Fence | S::Vegetation | S::Trunk | S::Pole | S::TrafficSign => {
                MovableClass::Static
            }
        })
    }

    /// The training class of a packed SemanticKITTI label.
    pub fn of_label(label: u32) -> Option<Self> {
        let (id, _) = hdmap_core::semantic::unpack_label(label);
        SemanticClass::from_id(id).and_then(Self::of_semantic)
    }
}

/// Number of classes.
pub const CLASSES: usize = 7;
/// Input channels (range, x, y, z, mask).
pub const CHANNELS: usize = 5;

/// The spherical projection of a scan to the range image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Projection {
    /// Image rows (one per beam for the training sensor).
    pub rows: usize,
    /// Image columns over 360° of azimuth (a multiple of 8).
    pub cols: usize,
    /// Elevation of the top row's upper edge, degrees.
    pub fov_up_deg: f64,
    /// Elevation of the bottom row's lower edge, degrees.
    pub fov_down_deg: f64,
}

impl Projection {
    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=512).contains(&self.rows) || !(8..=8192).contains(&self.cols) || !self.cols.is_multiple_of(8)
        {
            return Err(format!(
                "projection {} × {}: rows must be 1–512 and cols a multiple of 8 in 8–8192",
                self.rows, self.cols
            ));
        }
        if !(self.fov_up_deg.is_finite()
            && self.fov_down_deg.is_finite()
            && self.fov_up_deg > self.fov_down_deg)
        {
            return Err(format!(
                "projection field of view [{}, {}]°: fov_up_deg must exceed fov_down_deg",
                self.fov_down_deg, self.fov_up_deg
            ));
        }
        Ok(())
    }

    /// The pixel (row, col) of a sensor-frame point; `None` at the sensor origin, for
    /// non-finite points and outside the vertical field of view (the model never saw there).
    pub fn pixel(&self, p: [f32; 3]) -> Option<(usize, usize)> {
        let [x, y, z] = p.map(f64::from);
        let r = (x * x + y * y + z * z).sqrt();
        if !(r.is_finite() && r > 1e-6) {
            return None;
        }
        let elev = (z / r).asin().to_degrees();
        if !(self.fov_down_deg..=self.fov_up_deg).contains(&elev) {
            return None;
        }
        let fy = (self.fov_up_deg - elev) / (self.fov_up_deg - self.fov_down_deg) * self.rows as f64;
        let row = (fy.floor().max(0.0) as usize).min(self.rows - 1);
        let az = y.atan2(x); // −π..π, 0 ahead, counter-clockwise
        let fx = (0.5 - az / std::f64::consts::TAU) * self.cols as f64;
        let col = (fx.floor().max(0.0) as usize).min(self.cols - 1);
        Some((row, col))
    }

    /// The range image of the `points` whose range lies in `range_m` (`CHANNELS × rows ×
    /// cols`, row-major) and the pixel index of every point, in range or not (`None` where
    /// [`Projection::pixel`] has none). A pixel shows its nearest point.
    pub fn image(
        &self,
        points: &[[f32; 3]],
        range_m: std::ops::RangeInclusive<f32>,
    ) -> (Vec<f32>, Vec<Option<u32>>) {
        let n = self.rows * self.cols;
        let mut best = vec![f32::INFINITY; n];
        let mut pix = Vec::with_capacity(points.len());
        let mut img = vec![0f32; CHANNELS * n];
        for p in points {
            let Some((r, c)) = self.pixel(*p) else {
                pix.push(None);
                continue;
            };
            let k = r * self.cols + c;
            pix.push(Some(k as u32));
            let range = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            if range_m.contains(&range) && range < best[k] {
                best[k] = range;
                let v = [range / 20.0, p[0] / 20.0, p[1] / 20.0, p[2] / 2.0, 1.0];
                for (ch, val) in v.into_iter().enumerate() {
                    img[ch * n + k] = val;
                }
            }
        }
        (img, pix)
    }
}

/// What a model file was trained for (the `.toml` beside the weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// `rangeunet3` (native safetensors) or `torchscript`.
    pub architecture: String,
    /// Channel multiplier `w` of `rangeunet3` (first level has 8·w channels); 0 for TorchScript.
    #[serde(default)]
    pub width: i64,
    /// The range image.
    pub projection: Projection,
    /// The output classes, in logit order (must be [`MovableClass`]'s names, in its order).
    pub classes: Vec<String>,
    /// Scans are used from this range on, m (closer returns hit the vehicle itself).
    pub min_range_m: f64,
    /// ... up to this range, m.
    pub max_range_m: f64,
    /// How the weights were made (command line, data, seeds).
    #[serde(default)]
    pub trained_by: String,
    /// Training iterations.
    #[serde(default)]
    pub iterations: usize,
    /// Point IoU per class on the validation scans at the end of training, in class order.
    #[serde(default)]
    pub val_iou: Vec<f64>,
}

impl ModelCard {
    /// Checks the card; the message names the problem.
    pub fn validate(&self) -> Result<(), String> {
        self.projection.validate()?;
        let names: Vec<&str> = MovableClass::ALL.iter().map(|c| c.name()).collect();
        if self.classes.iter().map(String::as_str).ne(names.iter().copied()) {
            return Err(format!("classes {:?}: expected {:?}", self.classes, names));
        }
        match self.architecture.as_str() {
            "rangeunet3" if (1..=16).contains(&self.width) => {}
            "torchscript" => {}
            a => return Err(format!("unsupported model: {a} width {}", self.width)),
        }
        if !(self.min_range_m >= 0.0 && self.max_range_m > self.min_range_m) {
            return Err(format!("range [{}, {}] m is empty", self.min_range_m, self.max_range_m));
        }
        Ok(())
    }
}

/// The card's path for a weights path.
pub fn card_path(weights: &Path) -> PathBuf {
    weights.with_extension("toml")
}

fn err(path: &Path, message: impl std::fmt::Display) -> DynamicError {
    DynamicError::Input { what: path.display().to_string(), message: message.to_string() }
}

/// Rows padded (zeros below) to a multiple of 8.
fn padded_rows(rows: usize) -> usize {
    rows.div_ceil(8) * 8
}

/// `N` images (`CHANNELS × rows × cols` each) as an `N × 5 × rows8 × cols` tensor.
fn to_tensor(images: &[Vec<f32>], proj: &Projection) -> Tensor {
    let (h, w) = (proj.rows, proj.cols);
    let h8 = padded_rows(h);
    let mut data = vec![0f32; images.len() * CHANNELS * h8 * w];
    for (i, img) in images.iter().enumerate() {
        for ch in 0..CHANNELS {
            let dst = (i * CHANNELS + ch) * h8 * w;
            data[dst..dst + h * w].copy_from_slice(&img[ch * h * w..(ch + 1) * h * w]);
        }
    }
    Tensor::from_slice(&data).view([images.len() as i64, CHANNELS as i64, h8 as i64, w as i64])
}

enum Net {
    Native { vs: nn::VarStore, net: Box<UNet3> },
    TorchScript(tch::CModule),
}

/// Labels of one scan's points.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanLabels {
    /// The class of every point ([`MovableClass`] code); points the image cannot hold (at the
    /// origin, non-finite, outside the field of view) are `Static`.
    pub class: Vec<u8>,
    /// The probability that the point is movable; 0.5 (unknown) for the points the image
    /// cannot hold, so the free-space check decides them.
    pub movable: Vec<f32>,
}

/// A loaded model (native or TorchScript), usable from several threads (one at a time).
pub struct Model {
    net: Mutex<Net>,
    card: ModelCard,
    device: Device,
    /// The file it was loaded from (named in errors).
    path: PathBuf,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("card", &self.card).field("device", &self.device).finish()
    }
}

impl Model {
    /// Loads `path`: safetensors weights or a TorchScript `.pt`, each with its card beside it.
    pub fn load(path: &Path) -> Result<Self, DynamicError> {
        let cp = card_path(path);
        let text = std::fs::read_to_string(&cp).map_err(|e| err(&cp, format!("model card: {e}")))?;
        let card: ModelCard = toml::from_str(&text).map_err(|e| err(&cp, format!("model card: {e}")))?;
        card.validate().map_err(|m| err(&cp, m))?;
        let device = Device::cuda_if_available();
        let net = if card.architecture == "torchscript" {
            let m = tch::CModule::load_on_device(path, device)
                .map_err(|e| err(path, format!("TorchScript: {e}")))?;
            Net::TorchScript(m)
        } else {
            let mut vs = nn::VarStore::new(device);
            let net = UNet3::new(&vs.root(), CHANNELS as i64, CLASSES as i64, card.width);
            vs.load(path).map_err(|e| err(path, format!("weights: {e}")))?;
            vs.freeze();
            Net::Native { vs, net: Box::new(net) }
        };
        let model = Self { net: Mutex::new(net), card, device, path: path.to_path_buf() };
        // A wrong TorchScript (other input or output shape) fails here, naming the file.
        let pixels = model.card.projection.rows * model.card.projection.cols;
        let _probe = model.logits(&[vec![0f32; CHANNELS * pixels]]).map_err(|m| err(path, m))?;
        Ok(model)
    }

    /// The card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The device inference runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Logits `N × classes × rows × cols` (rows cropped back from the padding), on the CPU.
    fn logits(&self, images: &[Vec<f32>]) -> Result<Tensor, String> {
        let proj = &self.card.projection;
        let x = to_tensor(images, proj).to_device(self.device);
        let guard = match self.net.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let out = tch::no_grad(|| match &*guard {
            Net::Native { net, .. } => Ok(net.forward_t(&x, false)),
            Net::TorchScript(m) => m.forward_ts(&[&x]).map_err(|e| format!("TorchScript forward: {e}")),
        })?;
        let want = [images.len() as i64, CLASSES as i64, padded_rows(proj.rows) as i64, proj.cols as i64];
        if out.size() != want {
            return Err(format!(
                "the model returned {:?} for input {:?}; expected {want:?}",
                out.size(),
                x.size()
            ));
        }
        Ok(out.narrow(2, 0, proj.rows as i64).to_device(Device::Cpu))
    }

    /// Labels the points of one scan (sensor frame). Points outside the card's range limits
    /// are labelled too (from their pixel), but do not enter the image.
    pub fn label_scan(&self, points: &[[f32; 3]]) -> Result<ScanLabels, DynamicError> {
        let proj = self.card.projection;
        let range_m = self.card.min_range_m as f32..=self.card.max_range_m as f32;
        let (img, pix) = proj.image(points, range_m);
        let logits = self.logits(&[img]).map_err(|m| err(&self.path, m))?;
        let prob = logits.softmax(1, Kind::Float).squeeze_dim(0); // classes × rows × cols
        let (h, w) = (proj.rows, proj.cols);
        let prob: Vec<f32> = Vec::<f32>::try_from(prob.flatten(0, -1)).map_err(|e| err(&self.path, e))?;
        if let Some(bad) = prob.iter().find(|p| !p.is_finite()) {
            return Err(err(&self.path, format!("the model gave a class probability of {bad}")));
        }
        let n = h * w;
        let mut class = Vec::with_capacity(points.len());
        let mut movable = Vec::with_capacity(points.len());
        for px in pix {
            match px {
                Some(k) => {
                    let k = k as usize;
                    let (mut best, mut best_p, mut mov) = (0usize, -1f32, 0f32);
                    for ci in 0..CLASSES {
                        let p = prob[ci * n + k];
                        if p > best_p {
                            (best, best_p) = (ci, p);
                        }
                        if ci >= 2 {
                            mov += p;
                        }
                    }
                    class.push(best as u8);
                    movable.push(mov);
                }
                None => {
                    class.push(MovableClass::Static as u8);
                    movable.push(0.5);
                }
            }
        }
        Ok(ScanLabels { class, movable })
    }

    /// Writes the model as a TorchScript file (traced; input `N × 5 × rows8 × cols`), with its
    /// card (`architecture = "torchscript"`) beside it. Native models only.
    pub fn save_torchscript(&self, out: &Path) -> Result<(), DynamicError> {
        let guard = match self.net.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Net::Native { net, .. } = &*guard else {
            return Err(err(out, "the model is already TorchScript"));
        };
        let proj = self.card.projection;
        let example =
            to_tensor(&[vec![0f32; CHANNELS * proj.rows * proj.cols]], &proj).to_device(self.device);
        let module = tch::no_grad(|| {
            tch::CModule::create_by_tracing("RangeUNet", "forward", &[example], &mut |x| {
                vec![net.forward_t(&x[0], false)]
            })
        })
        .map_err(|e| err(out, format!("tracing: {e}")))?;
        let tmp = out.with_file_name(format!(
            ".{}.tmp",
            out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
        ));
        module.save(&tmp).map_err(|e| err(&tmp, e))?;
        let card = ModelCard { architecture: "torchscript".into(), width: 0, ..self.card.clone() };
        install(&tmp, out, &card)
    }
}

/// Moves weights written to `tmp_weights` to `weights` and puts `card` beside them. Both files
/// are complete before either is renamed into place (weights first), so a killed run leaves
/// the old pair or the new weights with a leftover temporary card, never a torn file.
fn install(tmp_weights: &Path, weights: &Path, card: &ModelCard) -> Result<(), DynamicError> {
    let text = toml::to_string(card).map_err(|e| err(weights, e))?;
    let cp = card_path(weights);
    let tmp_card = cp.with_file_name(format!(
        ".{}.tmp",
        cp.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
    ));
    std::fs::write(&tmp_card, format!("# hdmap-dynamic range-image segmentation model card\n{text}"))
        .map_err(|e| err(&tmp_card, e))?;
    std::fs::rename(tmp_weights, weights).map_err(|e| err(weights, e))?;
    std::fs::rename(&tmp_card, &cp).map_err(|e| err(&cp, e))?;
    Ok(())
}

/// One labelled scan (sensor frame) for training or evaluation.
#[derive(Debug, Clone)]
pub struct LabelledScan {
    /// Points within the card's range limits.
    pub points: Vec<[f32; 3]>,
    /// Class per point (`None`: unlabelled).
    pub class: Vec<Option<MovableClass>>,
}

/// Reads every `every`-th scan of a drive (`lidar/*.pcd` with `labels/<stem>.label`), keeping
/// points within `[min_range_m, max_range_m]`.
pub fn read_labelled_drive(
    drive: &Path,
    every: usize,
    min_range_m: f64,
    max_range_m: f64,
) -> Result<Vec<LabelledScan>, DynamicError> {
    let lidar = drive.join("lidar");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&lidar)
        .map_err(|e| err(&lidar, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcd"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(err(&lidar, "no .pcd scans"));
    }
    use rayon::prelude::*;
    let picked: Vec<PathBuf> = files.into_iter().step_by(every.max(1)).collect();
    picked
        .par_iter()
        .map(|p| {
            let f = hdmap_io::pcd::read_pcd(p)?;
            let stem = p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            let labels = hdmap_io::labels::read_labels(
                &drive.join("labels").join(format!("{stem}.label")),
                Some(f.cloud.len()),
            )?;
            let mut points = Vec::new();
            let mut class = Vec::new();
            for (i, l) in labels.iter().enumerate() {
                let q = f.cloud.positions.get(i);
                let r = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt();
                if (min_range_m..=max_range_m).contains(&r) {
                    points.push([q[0] as f32, q[1] as f32, q[2] as f32]);
                    class.push(MovableClass::of_label(*l));
                }
            }
            Ok(LabelledScan { points, class })
        })
        .collect()
}

/// Point IoU per class: intersections and unions, accumulated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClassIou {
    /// Points of class c labelled c.
    pub intersection: [u64; CLASSES],
    /// Points labelled c or of class c.
    pub union: [u64; CLASSES],
}

impl ClassIou {
    /// Adds one scan: `predicted` against `truth` (unlabelled truth points are skipped).
    pub fn add(&mut self, predicted: &[u8], truth: &[Option<MovableClass>]) {
        for (&p, t) in predicted.iter().zip(truth) {
            let Some(t) = t else { continue };
            let t = *t as usize;
            let p = p as usize;
            if p == t {
                self.intersection[t] += 1;
                self.union[t] += 1;
            } else {
                self.union[t] += 1;
                if p < CLASSES {
                    self.union[p] += 1;
                }
            }
        }
    }

    /// IoU per class (NaN where the class never occurs nor is predicted).
    pub fn iou(&self) -> [f64; CLASSES] {
        std::array::from_fn(|c| {
            if self.union[c] == 0 { f64::NAN } else { self.intersection[c] as f64 / self.union[c] as f64 }
        })
    }
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Iterations (mini-batches).
    pub iterations: usize,
    /// Crops per batch.
    pub batch: usize,
    /// Crop width, columns (a multiple of 8).
    pub crop_cols: usize,
    /// Channel multiplier.
    pub width: i64,
    /// Peak learning rate (Adam; cosine decay to 5 % of it).
    pub learning_rate: f64,
    /// Seed of sampling, augmentation and initial weights.
    pub seed: u64,
    /// The range image.
    pub projection: Projection,
    /// Points closer than this are not used, m.
    pub min_range_m: f64,
    /// Points farther than this are not used, m.
    pub max_range_m: f64,
    /// Recorded in the model card.
    pub trained_by: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            iterations: 1500,
            batch: 8,
            crop_cols: 256,
            width: 1,
            learning_rate: 3e-3,
            seed: 1,
            projection: Projection { rows: 32, cols: 896, fov_up_deg: 15.645, fov_down_deg: -25.645 },
            min_range_m: 2.0,
            max_range_m: 80.0,
            trained_by: String::new(),
        }
    }
}

/// One training example: the image of a scan (augmented: a turn about the vertical, a mirror
/// image, a tilt of up to 2° and a sensor height change of up to ±0.3 m, so that the model
/// does not learn one vehicle's mounting) and its per-pixel targets.
fn example(
    scan: &LabelledScan,
    proj: &Projection,
    rng: &mut ChaCha8Rng,
    augment: bool,
) -> (Vec<f32>, Vec<i64>) {
    let (yaw, mirror, roll, pitch, dz) = if augment {
        let tilt = 2f32.to_radians();
        (
            rng.random_range(0.0..std::f32::consts::TAU),
            rng.random_bool(0.5),
            rng.random_range(-tilt..tilt),
            rng.random_range(-tilt..tilt),
            rng.random_range(-0.3f32..0.3),
        )
    } else {
        (0.0, false, 0.0, 0.0, 0.0)
    };
    let (s, c) = yaw.sin_cos();
    let (sr, cr) = roll.sin_cos();
    let (sp, cp) = pitch.sin_cos();
    let pts: Vec<[f32; 3]> = scan
        .points
        .iter()
        .map(|p| {
            let y = if mirror { -p[1] } else { p[1] };
            let (x, y) = (c * p[0] - s * y, s * p[0] + c * y);
            // Roll about x, then pitch about y.
            let (y, z) = (cr * y - sr * p[2], sr * y + cr * p[2]);
            let (x, z) = (cp * x + sp * z, -sp * x + cp * z);
            [x, y, z + dz]
        })
        .collect();
    let (img, pix) = proj.image(&pts, 0.0..=f32::INFINITY); // scans come range-filtered
    // Target of a pixel: the class of the point it shows (the nearest), −100 for empty pixels
    // and unlabelled points.
    let n = proj.rows * proj.cols;
    let mut target = vec![-100i64; n];
    let mut best = vec![f32::INFINITY; n];
    for ((p, k), cl) in pts.iter().zip(&pix).zip(&scan.class) {
        let Some(k) = k else { continue };
        let k = *k as usize;
        let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        if r < best[k] {
            best[k] = r;
            target[k] = cl.map_or(-100, |c| c as i64);
        }
    }
    (img, target)
}

/// Crops columns `[c0, c0 + cw)` (wrapping) of a `ch × rows × cols` array.
fn crop_cols<T: Copy>(a: &[T], ch: usize, rows: usize, cols: usize, c0: usize, cw: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(ch * rows * cw);
    for k in 0..ch {
        for r in 0..rows {
            let row = &a[(k * rows + r) * cols..(k * rows + r + 1) * cols];
            out.extend((0..cw).map(|j| row[(c0 + j) % cols]));
        }
    }
    out
}

/// A batch of crops: inputs N × 5 × rows8 × cw, targets N × rows8 × cw.
fn batch(scans: &[LabelledScan], cfg: &TrainConfig, rng: &mut ChaCha8Rng) -> (Tensor, Tensor) {
    let p = &cfg.projection;
    let (rows, cols, cw) = (p.rows, p.cols, cfg.crop_cols.min(p.cols));
    let h8 = padded_rows(rows);
    let mut xs = Vec::with_capacity(cfg.batch * CHANNELS * h8 * cw);
    let mut ys = Vec::with_capacity(cfg.batch * h8 * cw);
    for _ in 0..cfg.batch {
        let scan = &scans[rng.random_range(0..scans.len())];
        let (img, target) = example(scan, p, rng, true);
        let c0 = rng.random_range(0..cols);
        let xi = crop_cols(&img, CHANNELS, rows, cols, c0, cw);
        let yi = crop_cols(&target, 1, rows, cols, c0, cw);
        for k in 0..CHANNELS {
            xs.extend_from_slice(&xi[k * rows * cw..(k + 1) * rows * cw]);
            xs.extend(std::iter::repeat_n(0f32, (h8 - rows) * cw));
        }
        ys.extend_from_slice(&yi);
        ys.extend(std::iter::repeat_n(-100i64, (h8 - rows) * cw));
    }
    let n = cfg.batch as i64;
    (
        Tensor::from_slice(&xs).view([n, CHANNELS as i64, h8 as i64, cw as i64]),
        Tensor::from_slice(&ys).view([n, h8 as i64, cw as i64]),
    )
}

/// Per-class IoU of `model` on labelled scans (each point gets its pixel's class).
pub fn evaluate(model: &Model, scans: &[LabelledScan]) -> Result<ClassIou, DynamicError> {
    let mut acc = ClassIou::default();
    for s in scans {
        let l = model.label_scan(&s.points)?;
        acc.add(&l.class, &s.class);
    }
    Ok(acc)
}

/// Trains a `rangeunet3` on `train` scans, validates on `val` scans (per-class IoU), writes the
/// weights to `out` (safetensors) and the card beside it (both atomically). `progress(iteration,
/// loss)` is called every 25 iterations.
pub fn train(
    train: &[LabelledScan],
    val: &[LabelledScan],
    cfg: &TrainConfig,
    out: &Path,
    mut progress: impl FnMut(usize, f64),
) -> Result<ModelCard, DynamicError> {
    cfg.projection.validate().map_err(|m| err(out, m))?;
    if !(1..=16).contains(&cfg.width) || cfg.batch == 0 || cfg.iterations == 0 {
        return Err(err(
            out,
            format!(
                "width {} (1–16), batch {} and iterations {} (at least 1) cannot train",
                cfg.width, cfg.batch, cfg.iterations
            ),
        ));
    }
    if train.is_empty() {
        return Err(err(out, "no training scans"));
    }
    if !cfg.crop_cols.is_multiple_of(8) || cfg.crop_cols == 0 {
        return Err(err(out, format!("crop of {} columns: must be a positive multiple of 8", cfg.crop_cols)));
    }
    tch::manual_seed(cfg.seed as i64);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let device = Device::cuda_if_available();
    // Class weights: (most frequent / this class)^½ over the training points, at most 10.
    let mut freq = [0u64; CLASSES];
    for s in train {
        for c in s.class.iter().flatten() {
            freq[*c as usize] += 1;
        }
    }
    let fmax = freq.iter().copied().max().unwrap_or(1).max(1) as f64;
    let weights: Vec<f32> =
        freq.iter().map(|&f| if f == 0 { 1.0 } else { (fmax / f as f64).sqrt().min(10.0) as f32 }).collect();
    let weight = Tensor::from_slice(&weights).to_device(device);
    let mut vs = nn::VarStore::new(device);
    let net = UNet3::new(&vs.root(), CHANNELS as i64, CLASSES as i64, cfg.width);
    let mut opt = nn::Adam::default().build(&vs, cfg.learning_rate).map_err(|e| err(out, e))?;
    let mut ema = f64::NAN;
    for it in 0..cfg.iterations {
        let lr = cfg.learning_rate
            * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * it as f64 / cfg.iterations as f64).cos()));
        opt.set_lr(lr);
        let (x, y) = batch(train, cfg, &mut rng);
        let logits = net.forward_t(&x.to_device(device), true);
        let loss =
            logits.cross_entropy_loss(&y.to_device(device), Some(&weight), tch::Reduction::Mean, -100, 0.0);
        opt.backward_step(&loss);
        let l = loss.double_value(&[]);
        ema = if ema.is_nan() { l } else { 0.95 * ema + 0.05 * l };
        if (it + 1) % 25 == 0 {
            progress(it + 1, ema);
        }
    }
    let mut card = ModelCard {
        architecture: "rangeunet3".into(),
        width: cfg.width,
        projection: cfg.projection,
        classes: MovableClass::ALL.iter().map(|c| c.name().to_string()).collect(),
        min_range_m: cfg.min_range_m,
        max_range_m: cfg.max_range_m,
        trained_by: cfg.trained_by.clone(),
        iterations: cfg.iterations,
        val_iou: Vec::new(),
    };
    vs.freeze();
    let model = Model {
        net: Mutex::new(Net::Native { vs, net: Box::new(net) }),
        card: card.clone(),
        device,
        path: out.to_path_buf(),
    };
    if !val.is_empty() {
        card.val_iou = evaluate(&model, val)?.iou().to_vec();
    }
    // Atomic: weights to a temporary name (VarStore::save picks the format by extension),
    // then both into place.
    let stem = out.file_stem().and_then(|n| n.to_str()).unwrap_or("model");
    let tmp_w = out.with_file_name(format!(".{stem}.tmp.safetensors"));
    {
        let guard = match model.net.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Net::Native { vs, .. } = &*guard {
            vs.save(&tmp_w).map_err(|e| err(&tmp_w, e))?;
        }
    }
    install(&tmp_w, out, &card)?;
    Ok(card)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_puts_points_where_their_angles_say() {
        let p = Projection { rows: 32, cols: 896, fov_up_deg: 15.0, fov_down_deg: -25.0 };
        // Straight ahead, level: elevation 0 is 15/40 of the way down, azimuth 0 mid-image.
        assert_eq!(p.pixel([10.0, 0.0, 0.0]), Some((12, 448)));
        // To the left (+y, azimuth +90°) is a quarter turn before the middle.
        assert_eq!(p.pixel([0.0, 10.0, 0.0]).map(|x| x.1), Some(224));
        // Far below the field of view: not in the image; just inside: the last row.
        assert_eq!(p.pixel([1.0, 0.0, -10.0]), None);
        assert_eq!(p.pixel([10.0, 0.0, -4.6]).map(|x| x.0), Some(31));
        assert_eq!(p.pixel([0.0, 0.0, 0.0]), None);
        assert_eq!(p.pixel([f32::NAN, 0.0, 0.0]), None);
        // The nearest point wins a shared pixel.
        let (img, pix) = p.image(&[[20.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.5, 0.0, 0.0]], 1.0..=80.0);
        assert_eq!(pix[0], pix[1]);
        let k = pix[0].unwrap_or(0) as usize;
        assert!((img[k] - 0.5).abs() < 1e-6, "range channel holds 10 m / 20 m");
        assert_eq!(img[4 * 32 * 896 + k], 1.0);
        // Out of range: a pixel, but not in the image.
        assert_eq!(pix[2], pix[0]);
    }

    #[test]
    fn classes_cover_every_semantic_class() {
        for c in SemanticClass::ALL {
            let m = MovableClass::of_semantic(c);
            assert_eq!(m.is_none(), c == SemanticClass::Unlabeled, "{c:?}");
            // Everything that can move is a movable class.
            if c.is_moving() {
                assert!(m.is_some_and(MovableClass::movable), "{c:?}");
            }
        }
        for (i, c) in MovableClass::ALL.iter().enumerate() {
            assert_eq!(MovableClass::from_code(i as u8), Some(*c));
        }
    }

    #[test]
    fn untrainable_settings_are_refused_before_training() {
        let scan = LabelledScan { points: vec![[5.0, 0.0, 0.0]], class: vec![Some(MovableClass::Static)] };
        let out = std::env::temp_dir().join("hdmap-never-written.safetensors");
        for cfg in [
            TrainConfig { width: 0, ..TrainConfig::default() },
            TrainConfig { width: 17, ..TrainConfig::default() },
            TrainConfig { batch: 0, ..TrainConfig::default() },
        ] {
            let e = train(std::slice::from_ref(&scan), &[], &cfg, &out, |_, _| {}).expect_err("refused");
            assert!(e.to_string().contains("cannot train"), "{e}");
        }
        assert!(!out.exists());
    }

    #[test]
    fn iou_counts_follow_the_definition() {
        let mut acc = ClassIou::default();
        let truth = [Some(MovableClass::Car), Some(MovableClass::Car), Some(MovableClass::Static), None];
        acc.add(&[2, 0, 0, 2], &truth);
        let iou = acc.iou();
        assert!((iou[2] - 0.5).abs() < 1e-12 && (iou[0] - 0.5).abs() < 1e-12);
        assert!(iou[1].is_nan());
    }
}
