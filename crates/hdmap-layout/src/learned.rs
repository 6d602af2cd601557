//! The learned paint segmenter: a small U-Net (tch) that labels each orthophoto pixel none /
//! white paint / yellow paint, trained by [`train`] on simulated orthophotos with their paint
//! label rasters (`hdmap train layout`).
//!
//! Network: `hdmap_nn::UNet3` (three 2× down-sampling levels, 8·w, 16·w, 32·w channels, a bottleneck,
//! three up-sampling levels with skip connections; each level two 3×3 conv + batch norm + ReLU),
//! a 1×1 head with three logits. Input: RGB / 255 − 0.5 at the training GSD; another GSD is
//! resampled to it and back. The receptive field (~70 px ≈ 5.6 m at 8 cm) sees a marking and
//! the pavement around it, which is what tells paint in shadow from a bright kerb.
//!
//! Weights are safetensors files (`VarStore::save`); a TOML side file (same stem) records the
//! GSD, width and the command that trained them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hdmap_io::raster::{Raster, Window};
use hdmap_nn::UNet3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::LayoutError;
use crate::segment::{PaintClass, RgbTile, Segmenter};

/// What a weights file was trained for (the `.toml` beside the `.safetensors`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// Architecture name (`unet3`).
    pub architecture: String,
    /// Channel multiplier `w` (first level has 8·w channels).
    pub width: i64,
    /// Ground sample distance of the training images, m.
    pub gsd_m: f64,
    /// How the weights were made (command line, data, seeds).
    pub trained_by: String,
    /// Training iterations.
    pub iterations: usize,
    /// Pixel IoU of white / yellow paint on the validation crops at the end of training.
    pub val_iou: [f64; 2],
}

fn err(path: &Path, message: impl std::fmt::Display) -> LayoutError {
    LayoutError::Input { path: path.display().to_string(), message: message.to_string() }
}

/// The card's path for a weights path.
pub fn card_path(weights: &Path) -> PathBuf {
    weights.with_extension("toml")
}

/// Interleaved RGB (h × w) to a 1 × 3 × h × w float tensor, normalised.
fn to_input(rgb: &[u8], w: usize, h: usize) -> Tensor {
    let mut planar = vec![0f32; 3 * w * h];
    for i in 0..w * h {
        for k in 0..3 {
            planar[k * w * h + i] = rgb[i * 3 + k] as f32 / 255.0 - 0.5;
        }
    }
    Tensor::from_slice(&planar).view([1, 3, h as i64, w as i64])
}

/// Bilinear resampling of interleaved RGB by `scale` (output = input × scale).
fn resample_rgb(rgb: &[u8], w: usize, h: usize, ow: usize, oh: usize) -> Vec<u8> {
    let mut out = vec![0u8; ow * oh * 3];
    let (sx, sy) = (w as f64 / ow as f64, h as f64 / oh as f64);
    for y in 0..oh {
        let fy = ((y as f64 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f64);
        let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
        let y1 = (y0 + 1).min(h - 1);
        for x in 0..ow {
            let fx = ((x as f64 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f64);
            let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
            let x1 = (x0 + 1).min(w - 1);
            for k in 0..3 {
                let p = |xx: usize, yy: usize| rgb[(yy * w + xx) * 3 + k] as f64;
                let v = p(x0, y0) * (1.0 - tx) * (1.0 - ty)
                    + p(x1, y0) * tx * (1.0 - ty)
                    + p(x0, y1) * (1.0 - tx) * ty
                    + p(x1, y1) * tx * ty;
                out[(y * ow + x) * 3 + k] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// The learned segmenter (weights + card), usable from parallel tiles.
pub struct Learned {
    net: Mutex<(nn::VarStore, UNet3)>,
    card: ModelCard,
}

impl std::fmt::Debug for Learned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learned").field("card", &self.card).finish()
    }
}

impl Learned {
    /// Loads weights (safetensors) and their card (`.toml` beside them).
    pub fn load(weights: &Path) -> Result<Self, LayoutError> {
        let cp = card_path(weights);
        let text = std::fs::read_to_string(&cp).map_err(|e| err(&cp, format!("model card: {e}")))?;
        let card: ModelCard = toml::from_str(&text).map_err(|e| err(&cp, format!("model card: {e}")))?;
        if card.architecture != "unet3"
            || !(1..=16).contains(&card.width)
            || card.gsd_m.is_nan()
            || card.gsd_m <= 0.0
        {
            return Err(err(
                &cp,
                format!("unsupported model: {} width {} gsd {}", card.architecture, card.width, card.gsd_m),
            ));
        }
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = UNet3::new(&vs.root(), 3, 3, card.width);
        vs.load(weights).map_err(|e| err(weights, format!("weights: {e}")))?;
        Ok(Self { net: Mutex::new((vs, net)), card })
    }

    /// The card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// Class scores → classes for an RGB tile already at the model's GSD.
    fn classify(&self, rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
        // Pad to a multiple of 8 (three poolings) by edge replication.
        let (pw, ph) = (w.div_ceil(8) * 8, h.div_ceil(8) * 8);
        let mut padded = vec![0u8; pw * ph * 3];
        for y in 0..ph {
            for x in 0..pw {
                let (sx, sy) = (x.min(w - 1), y.min(h - 1));
                padded[(y * pw + x) * 3..(y * pw + x) * 3 + 3]
                    .copy_from_slice(&rgb[(sy * w + sx) * 3..(sy * w + sx) * 3 + 3]);
            }
        }
        let input = to_input(&padded, pw, ph);
        let classes = {
            let guard = match self.net.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            tch::no_grad(|| guard.1.forward_t(&input, false).argmax(1, false).to_kind(Kind::Uint8))
        };
        let flat: Vec<u8> = Vec::<u8>::try_from(classes.flatten(0, -1)).unwrap_or_else(|_| vec![0; pw * ph]);
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            out.extend_from_slice(&flat[y * pw..y * pw + w]);
        }
        out
    }
}

impl Segmenter for Learned {
    fn segment(&self, tile: &RgbTile<'_>, gsd_m: f64) -> Vec<PaintClass> {
        let (w, h) = (tile.w, tile.h);
        if w == 0 || h == 0 {
            return Vec::new();
        }
        let scale = gsd_m / self.card.gsd_m;
        let classes = if (scale - 1.0).abs() < 0.05 {
            self.classify(tile.rgb, w, h)
        } else {
            let (ow, oh) =
                (((w as f64 * scale).round() as usize).max(8), ((h as f64 * scale).round() as usize).max(8));
            let c = self.classify(&resample_rgb(tile.rgb, w, h, ow, oh), ow, oh);
            // Nearest back to the tile's grid; a pixel is paint if any of its sub-pixels is.
            let mut out = vec![0u8; w * h];
            for y in 0..oh {
                for x in 0..ow {
                    let v = c[y * ow + x];
                    if v == 0 {
                        continue;
                    }
                    let (tx, ty) = ((x * w / ow).min(w - 1), (y * h / oh).min(h - 1));
                    let o = &mut out[ty * w + tx];
                    *o = (*o).max(v);
                }
            }
            out
        };
        classes
            .into_iter()
            .map(|c| match c {
                1 => PaintClass::White,
                2 => PaintClass::Yellow,
                _ => PaintClass::None,
            })
            .collect()
    }
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Iterations (mini-batches).
    pub iterations: usize,
    /// Crops per batch.
    pub batch: usize,
    /// Crop size, px.
    pub crop_px: usize,
    /// Channel multiplier.
    pub width: i64,
    /// Peak learning rate (Adam; cosine decay to 5 % of it).
    pub learning_rate: f64,
    /// Seed of crop sampling, augmentation and initial weights.
    pub seed: u64,
    /// Recorded in the model card.
    pub trained_by: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            iterations: 1500,
            batch: 8,
            crop_px: 192,
            width: 1,
            learning_rate: 3e-3,
            seed: 1,
            trained_by: String::new(),
        }
    }
}

/// One training scene: an orthophoto and its paint label raster (same grid; u8 0/1/2).
#[derive(Debug, Clone)]
pub struct Scene {
    /// RGB orthophoto.
    pub ortho: PathBuf,
    /// Labels.
    pub labels: PathBuf,
}

struct SceneData {
    ortho: Raster,
    labels: Raster,
    w: usize,
    h: usize,
    /// Some paint pixels (for crops centred on markings).
    paint: Vec<(usize, usize)>,
}

fn open_scene(s: &Scene) -> Result<(SceneData, f64), LayoutError> {
    let ortho = Raster::open(&s.ortho)?;
    let labels = Raster::open(&s.labels)?;
    let (w, h) = (ortho.info.width, ortho.info.height);
    if (labels.info.width, labels.info.height) != (w, h) {
        return Err(err(
            &s.labels,
            format!("{}×{} px; the orthophoto is {w}×{h}", labels.info.width, labels.info.height),
        ));
    }
    if ortho.info.bands.len() < 3 {
        return Err(err(&s.ortho, "an RGB orthophoto is needed"));
    }
    let g = ortho.georef()?;
    let gsd = (g.geo_transform[1].powi(2) + g.geo_transform[4].powi(2)).sqrt();
    // Paint pixel list from a strided scan of the label raster, band by band of rows.
    let mut paint = Vec::new();
    let rows = 512;
    for r0 in (0..h).step_by(rows) {
        let win = Window { col: 0, row: r0, width: w, height: rows.min(h - r0) };
        let lab: Vec<u8> = labels.read_window(1, win)?;
        for (i, v) in lab.iter().enumerate().step_by(7) {
            if *v != 0 {
                paint.push((i % w, r0 + i / w));
            }
        }
    }
    Ok((SceneData { ortho, labels, w, h, paint }, gsd))
}

fn read_crop(s: &SceneData, col: usize, row: usize, n: usize) -> Result<(Vec<u8>, Vec<u8>), LayoutError> {
    let win = Window { col, row, width: n, height: n };
    let bands: Vec<Vec<u8>> = (1..=3).map(|b| s.ortho.read_window::<u8>(b, win)).collect::<Result<_, _>>()?;
    let mut rgb = Vec::with_capacity(n * n * 3);
    for ((r, g), b) in bands[0].iter().zip(&bands[1]).zip(&bands[2]).take(n * n) {
        rgb.extend([*r, *g, *b]);
    }
    let lab: Vec<u8> = s.labels.read_window(1, win)?;
    Ok((rgb, lab))
}

/// A batch of crops: inputs N×3×n×n, targets N×n×n (i64).
fn batch(
    scenes: &[SceneData],
    rng: &mut ChaCha8Rng,
    count: usize,
    n: usize,
    augment: bool,
) -> Result<(Tensor, Tensor), LayoutError> {
    let mut xs = Vec::with_capacity(count * 3 * n * n);
    let mut ys = Vec::with_capacity(count * n * n);
    for _ in 0..count {
        let s = &scenes[rng.random_range(0..scenes.len())];
        let (col, row) = if !s.paint.is_empty() && rng.random_bool(0.8) {
            let (x, y) = s.paint[rng.random_range(0..s.paint.len())];
            let jx = rng.random_range(0..n);
            let jy = rng.random_range(0..n);
            (x.saturating_sub(jx).min(s.w - n), y.saturating_sub(jy).min(s.h - n))
        } else {
            (rng.random_range(0..=s.w - n), rng.random_range(0..=s.h - n))
        };
        let (mut rgb, mut lab) = read_crop(s, col, row, n)?;
        if augment {
            // Dihedral transform (flips, 90° turns) and a colour gain per channel.
            let (fx, fy, tr) = (rng.random_bool(0.5), rng.random_bool(0.5), rng.random_bool(0.5));
            let gain: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.85..1.15));
            let bright: f32 = rng.random_range(0.75..1.2);
            let (mut rgb2, mut lab2) = (vec![0u8; rgb.len()], vec![0u8; lab.len()]);
            for y in 0..n {
                for x in 0..n {
                    let (mut sx, mut sy) = (x, y);
                    if tr {
                        std::mem::swap(&mut sx, &mut sy);
                    }
                    if fx {
                        sx = n - 1 - sx;
                    }
                    if fy {
                        sy = n - 1 - sy;
                    }
                    let (i, j) = (y * n + x, sy * n + sx);
                    lab2[i] = lab[j];
                    for k in 0..3 {
                        rgb2[i * 3 + k] =
                            (rgb[j * 3 + k] as f32 * gain[k] * bright).round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
            rgb = rgb2;
            lab = lab2;
        }
        let planar = to_input(&rgb, n, n);
        xs.extend(Vec::<f32>::try_from(planar.flatten(0, -1)).unwrap_or_default());
        ys.extend(lab.iter().map(|&v| v.min(2) as i64));
    }
    let x = Tensor::from_slice(&xs).view([count as i64, 3, n as i64, n as i64]);
    let y = Tensor::from_slice(&ys).view([count as i64, n as i64, n as i64]);
    Ok((x, y))
}

/// Intersection and union counts of classes 1 and 2.
fn iou_counts(pred: &Tensor, target: &Tensor) -> [[f64; 2]; 2] {
    let mut out = [[0.0; 2]; 2];
    for (k, c) in [1i64, 2].into_iter().enumerate() {
        let (p, t) = (pred.eq(c), target.eq(c));
        out[k][0] = p.logical_and(&t).sum(Kind::Float).double_value(&[]);
        out[k][1] = p.logical_or(&t).sum(Kind::Float).double_value(&[]);
    }
    out
}

/// Trains a U-Net on `train` scenes, validates on `val` scenes, writes the weights to `out`
/// (safetensors) and the model card beside them (atomically, both). `progress(iteration,
/// loss)` is called every 25 iterations.
pub fn train(
    train: &[Scene],
    val: &[Scene],
    cfg: &TrainConfig,
    out: &Path,
    mut progress: impl FnMut(usize, f64),
) -> Result<ModelCard, LayoutError> {
    if train.is_empty() {
        return Err(err(out, "no training scenes"));
    }
    tch::manual_seed(cfg.seed as i64);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut gsd = None;
    let mut open = |list: &[Scene]| -> Result<Vec<SceneData>, LayoutError> {
        let mut v = Vec::new();
        for s in list {
            let (d, g) = open_scene(s)?;
            if d.w < cfg.crop_px || d.h < cfg.crop_px {
                return Err(err(&s.ortho, format!("smaller than a {} px crop", cfg.crop_px)));
            }
            match gsd {
                None => gsd = Some(g),
                Some(g0) if (g - g0).abs() > 1e-3 => {
                    return Err(err(
                        &s.ortho,
                        format!("GSD {g:.3} m differs from the first scene's {g0:.3} m"),
                    ));
                }
                _ => {}
            }
            v.push(d);
        }
        Ok(v)
    };
    let train_data = open(train)?;
    let val_data = open(val)?;
    let gsd_m = gsd.unwrap_or(0.08);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet3::new(&vs.root(), 3, 3, cfg.width);
    let mut opt = nn::Adam::default().build(&vs, cfg.learning_rate).map_err(|e| err(out, e))?;
    // Paint is a few per cent of a crop even when centred on a marking: weigh it up.
    let weight = Tensor::from_slice(&[1.0f32, 4.0, 4.0]);
    let mut ema = f64::NAN;
    for it in 0..cfg.iterations {
        let lr = cfg.learning_rate
            * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * it as f64 / cfg.iterations as f64).cos()));
        opt.set_lr(lr);
        let (x, y) = batch(&train_data, &mut rng, cfg.batch, cfg.crop_px, true)?;
        let logits = net.forward_t(&x, true);
        let loss = logits.cross_entropy_loss(&y, Some(&weight), tch::Reduction::Mean, -100, 0.0);
        opt.backward_step(&loss);
        let l = loss.double_value(&[]);
        ema = if ema.is_nan() { l } else { 0.95 * ema + 0.05 * l };
        if (it + 1) % 25 == 0 {
            progress(it + 1, ema);
        }
    }
    // Validation IoU on fixed crops of the validation scenes.
    let mut vrng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    let mut acc = [[0.0; 2]; 2];
    let val_source = if val_data.is_empty() { &train_data } else { &val_data };
    for _ in 0..8 {
        let (x, y) = batch(val_source, &mut vrng, 4, 256, false)?;
        let pred = tch::no_grad(|| net.forward_t(&x, false).argmax(1, false));
        let c = iou_counts(&pred, &y);
        for k in 0..2 {
            acc[k][0] += c[k][0];
            acc[k][1] += c[k][1];
        }
    }
    let val_iou = [acc[0][0] / acc[0][1].max(1.0), acc[1][0] / acc[1][1].max(1.0)];
    let card = ModelCard {
        architecture: "unet3".into(),
        width: cfg.width,
        gsd_m,
        trained_by: cfg.trained_by.clone(),
        iterations: cfg.iterations,
        val_iou,
    };
    // Atomic: write both to temporary names, then rename.
    // (VarStore::save picks the format by extension.)
    let stem = out.file_stem().and_then(|n| n.to_str()).unwrap_or("model");
    let tmp_w = out.with_file_name(format!(".{stem}.tmp.safetensors"));
    vs.save(&tmp_w).map_err(|e| err(&tmp_w, e))?;
    let text = toml::to_string(&card).map_err(|e| err(out, e))?;
    hdmap_io::fsutil::write_atomic(&card_path(out), |w| {
        use std::io::Write;
        w.write_all(format!("# hdmap-layout paint segmentation model card\n{text}").as_bytes())
            .map_err(|source| hdmap_io::IoError::Os { path: card_path(out), source })
    })?;
    std::fs::rename(&tmp_w, out).map_err(|e| err(out, e))?;
    Ok(card)
}
