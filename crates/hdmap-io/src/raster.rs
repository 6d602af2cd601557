//! Rasters through GDAL: GeoTIFF orthophotos and DSMs (and anything else GDAL reads).
//!
//! [`Raster`] opens a file without reading pixels; [`Raster::read_window`] reads one window of
//! one band, so a 20k × 20k orthophoto is processed tile by tile ([`Raster::tiles`]) and never
//! loads whole. [`write_geotiff`] writes a tiled, DEFLATE-compressed GeoTIFF with its CRS and
//! geotransform, atomically.

use std::path::{Path, PathBuf};

use gdal::raster::{GdalType, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager};
use hdmap_core::Crs;
use serde::Serialize;

use crate::IoError;
use crate::crs::crs_from_wkt;
use crate::fsutil::{check_input_file, write_atomic_via_path};

/// One band's description.
#[derive(Debug, Clone, Serialize)]
pub struct BandInfo {
    /// GDAL data type name (`Byte`, `UInt16`, `Float32`, ...).
    pub data_type: String,
    /// No-data value, if set.
    pub nodata: Option<f64>,
    /// Colour interpretation (`Red`, `Gray`, `Alpha`, ...).
    pub color: String,
    /// Natural block size (tile or strip) in pixels.
    pub block: (usize, usize),
}

/// Georeferencing of a raster: pixel → CRS affine transform and the CRS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeoRef {
    /// GDAL geotransform: `x = gt0 + col·gt1 + row·gt2`, `y = gt3 + col·gt4 + row·gt5`
    /// (pixel corner convention; `col + 0.5` is a pixel centre).
    pub geo_transform: [f64; 6],
    /// The CRS.
    pub crs: Crs,
}

impl GeoRef {
    /// CRS coordinates of a pixel position (fractional; `+0.5` for centres).
    pub fn pixel_to_world(&self, col: f64, row: f64) -> [f64; 2] {
        let g = &self.geo_transform;
        [g[0] + col * g[1] + row * g[2], g[3] + col * g[4] + row * g[5]]
    }

    /// Pixel position of CRS coordinates (inverse of [`GeoRef::pixel_to_world`]).
    pub fn world_to_pixel(&self, x: f64, y: f64) -> [f64; 2] {
        let g = &self.geo_transform;
        let det = g[1] * g[5] - g[2] * g[4];
        let (dx, dy) = (x - g[0], y - g[3]);
        [(dx * g[5] - dy * g[2]) / det, (dy * g[1] - dx * g[4]) / det]
    }
}

/// What a raster is, without its pixels.
#[derive(Debug, Clone, Serialize)]
pub struct RasterInfo {
    /// GDAL driver short name (`GTiff`, `JPEG`, ...).
    pub driver: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bands.
    pub bands: Vec<BandInfo>,
    /// Geotransform, when the file has one (GDAL's default identity transform is not one).
    pub geo_transform: Option<[f64; 6]>,
    /// CRS, when the file declares one.
    pub crs: Option<Crs>,
    /// Pixel size (x, y) in CRS units.
    pub pixel_size: Option<(f64, f64)>,
    /// Ground size of a pixel (x, y) in metres: pixel size times the CRS linear unit; for
    /// geographic CRSs, degrees converted on the WGS84 sphere (6 378 137 m) at the raster's
    /// centre latitude.
    pub ground_pixel_m: Option<(f64, f64)>,
    /// Ground sample distance in metres: the larger side of [`RasterInfo::ground_pixel_m`].
    pub gsd_m: Option<f64>,
    /// Bounds `[min_x, min_y, max_x, max_y]` in CRS units.
    pub bounds: Option<[f64; 4]>,
}

/// A window of a raster in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// First column.
    pub col: usize,
    /// First row.
    pub row: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// An open raster.
pub struct Raster {
    path: PathBuf,
    dataset: Dataset,
    /// Its description.
    pub info: RasterInfo,
}

fn gdal_err(path: &Path) -> impl Fn(gdal::errors::GdalError) -> IoError + '_ {
    move |source| IoError::Gdal { path: path.to_path_buf(), source }
}

impl Raster {
    /// Opens a raster (no pixels are read).
    pub fn open(path: &Path) -> Result<Self, IoError> {
        crate::init_gdal();
        check_input_file(path)?;
        let dataset = Dataset::open(path).map_err(gdal_err(path))?;
        if dataset.raster_count() == 0 {
            return Err(IoError::Unsupported { path: path.to_path_buf(), detail: "no raster bands".into() });
        }
        let (width, height) = dataset.raster_size();
        let mut bands = Vec::new();
        for b in dataset.rasterbands() {
            let b = b.map_err(gdal_err(path))?;
            bands.push(BandInfo {
                data_type: b.band_type().name(),
                nodata: b.no_data_value(),
                color: b.color_interpretation().name(),
                block: b.block_size(),
            });
        }
        let gt = dataset.geo_transform().ok().filter(|g| *g != [0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let srs = dataset.spatial_ref().ok();
        let crs = srs.as_ref().and_then(|s| s.to_wkt().ok()).and_then(|w| crs_from_wkt(&w));
        let pixel_size = gt.map(|g| ((g[1] * g[1] + g[4] * g[4]).sqrt(), (g[2] * g[2] + g[5] * g[5]).sqrt()));
        let bounds = gt.map(|g| {
            let corners =
                [(0.0, 0.0), (width as f64, 0.0), (0.0, height as f64), (width as f64, height as f64)];
            let pts: Vec<(f64, f64)> = corners
                .iter()
                .map(|(c, r)| (g[0] + c * g[1] + r * g[2], g[3] + c * g[4] + r * g[5]))
                .collect();
            let fold = |f: fn(f64, f64) -> f64, init: f64, k: usize| {
                pts.iter().map(|p| if k == 0 { p.0 } else { p.1 }).fold(init, f)
            };
            [
                fold(f64::min, f64::INFINITY, 0),
                fold(f64::min, f64::INFINITY, 1),
                fold(f64::max, f64::NEG_INFINITY, 0),
                fold(f64::max, f64::NEG_INFINITY, 1),
            ]
        });
        let ground_pixel_m = match (&srs, pixel_size, bounds) {
            (Some(s), Some((px, py)), Some(b)) if s.is_geographic() => {
                let lat = ((b[1] + b[3]) / 2.0).to_radians();
                Some((px.to_radians() * 6_378_137.0 * lat.cos(), py.to_radians() * 6_378_137.0))
            }
            (Some(s), Some((px, py)), _) if s.is_projected() => {
                Some((px * s.linear_units(), py * s.linear_units()))
            }
            _ => None,
        };
        let gsd_m = ground_pixel_m.map(|(x, y)| x.max(y));
        let info = RasterInfo {
            driver: dataset.driver().short_name(),
            width,
            height,
            bands,
            geo_transform: gt,
            crs,
            pixel_size,
            ground_pixel_m,
            gsd_m,
            bounds,
        };
        Ok(Self { path: path.to_path_buf(), dataset, info })
    }

    /// The georeferencing; fails naming the file when the raster has no CRS or no geotransform
    /// (an orthophoto without them would silently produce a map in the wrong place).
    pub fn georef(&self) -> Result<GeoRef, IoError> {
        let gt = self.info.geo_transform.ok_or_else(|| IoError::MissingCrs {
            path: self.path.clone(),
            detail: "raster has no geotransform (pixel → world mapping)".into(),
        })?;
        let crs = self.info.crs.clone().ok_or_else(|| IoError::MissingCrs {
            path: self.path.clone(),
            detail: "raster declares no coordinate reference system".into(),
        })?;
        Ok(GeoRef { geo_transform: gt, crs })
    }

    /// Reads one window of band `band` (1-based) as `T`, row-major. Windows that reach past the
    /// raster are an error.
    pub fn read_window<T: Copy + GdalType>(&self, band: usize, w: Window) -> Result<Vec<T>, IoError> {
        if w.col + w.width > self.info.width || w.row + w.height > self.info.height {
            return Err(IoError::Format {
                path: self.path.clone(),
                format: "raster",
                detail: format!("window {w:?} outside {}×{}", self.info.width, self.info.height),
            });
        }
        let b = self.dataset.rasterband(band).map_err(gdal_err(&self.path))?;
        let buf = b
            .read_as::<T>((w.col as isize, w.row as isize), (w.width, w.height), (w.width, w.height), None)
            .map_err(gdal_err(&self.path))?;
        Ok(buf.into_shape_and_vec().1)
    }

    /// Splits the raster into tiles of `tile_px` × `tile_px` that overlap their neighbours by
    /// `overlap_px` on each side (clipped at the raster edge), row-major.
    pub fn tiles(&self, tile_px: usize, overlap_px: usize) -> Vec<Window> {
        tiles(self.info.width, self.info.height, tile_px, overlap_px)
    }

    /// Reads the first and the last block of every band, so a file cut short (tiles missing at
    /// its end) fails here, with the file named, instead of deep inside a stage.
    pub fn check_readable(&self) -> Result<(), IoError> {
        for i in 1..=self.info.bands.len() {
            let b = self.dataset.rasterband(i).map_err(gdal_err(&self.path))?;
            let (bw, bh) = b.block_size();
            let (bw, bh) = (bw.clamp(1, self.info.width), bh.clamp(1, self.info.height));
            let last = Window {
                col: (self.info.width - 1) / bw * bw,
                row: (self.info.height - 1) / bh * bh,
                width: 0,
                height: 0,
            };
            for w in [Window { col: 0, row: 0, width: bw, height: bh }, last] {
                let width = if w.width == 0 { self.info.width - w.col } else { w.width };
                let height = if w.height == 0 { self.info.height - w.row } else { w.height };
                let _: Vec<f64> = self.read_window(i, Window { col: w.col, row: w.row, width, height })?;
            }
        }
        Ok(())
    }

    /// The file this raster was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Tiles covering `width × height` (see [`Raster::tiles`]).
pub fn tiles(width: usize, height: usize, tile_px: usize, overlap_px: usize) -> Vec<Window> {
    let tile_px = tile_px.max(1);
    let mut out = Vec::new();
    let mut row = 0;
    while row < height {
        let mut col = 0;
        while col < width {
            let c0 = col.saturating_sub(overlap_px);
            let r0 = row.saturating_sub(overlap_px);
            let c1 = (col + tile_px + overlap_px).min(width);
            let r1 = (row + tile_px + overlap_px).min(height);
            out.push(Window { col: c0, row: r0, width: c1 - c0, height: r1 - r0 });
            col += tile_px;
        }
        row += tile_px;
    }
    out
}

/// Writes a GeoTIFF (tiled 256×256, DEFLATE, BigTIFF when needed) with the given bands
/// (row-major, `width × height` each), geotransform and CRS, atomically. The CRS must be an
/// EPSG code or WKT GDAL understands.
pub fn write_geotiff<T: Copy + GdalType>(
    path: &Path,
    width: usize,
    height: usize,
    bands: &[Vec<T>],
    georef: &GeoRef,
    nodata: Option<f64>,
) -> Result<(), IoError> {
    if bands.is_empty() || bands.iter().any(|b| b.len() != width * height) {
        crate::init_gdal();
        return Err(IoError::Format {
            path: path.to_path_buf(),
            format: "GeoTIFF",
            detail: format!("{} bands; each must have {width}×{height} values", bands.len()),
        });
    }
    let srs = match &georef.crs {
        Crs::Epsg(code) => SpatialRef::from_epsg(*code),
        Crs::Wkt { epsg: Some(code), .. } => SpatialRef::from_epsg(*code),
        Crs::Wkt { wkt, .. } => SpatialRef::from_wkt(wkt),
    }
    .map_err(gdal_err(path))?;
    write_atomic_via_path(path, |tmp| {
        let driver = DriverManager::get_driver_by_name("GTiff").map_err(gdal_err(path))?;
        let mut opts = RasterCreationOptions::new();
        for (k, v) in [
            ("TILED", "YES"),
            ("BLOCKXSIZE", "256"),
            ("BLOCKYSIZE", "256"),
            ("COMPRESS", "DEFLATE"),
            ("BIGTIFF", "IF_SAFER"),
        ] {
            opts.set_name_value(k, v).map_err(gdal_err(path))?;
        }
        if bands.len() == 3 || bands.len() == 4 {
            opts.set_name_value("PHOTOMETRIC", "RGB").map_err(gdal_err(path))?;
        }
        let mut ds = driver
            .create_with_band_type_with_options::<T, _>(tmp, width, height, bands.len(), &opts)
            .map_err(gdal_err(path))?;
        ds.set_geo_transform(&georef.geo_transform).map_err(gdal_err(path))?;
        ds.set_spatial_ref(&srs).map_err(gdal_err(path))?;
        for (i, data) in bands.iter().enumerate() {
            let mut band = ds.rasterband(i + 1).map_err(gdal_err(path))?;
            if let Some(nd) = nodata {
                band.set_no_data_value(Some(nd)).map_err(gdal_err(path))?;
            }
            let mut buf = gdal::raster::Buffer::new((width, height), data.clone());
            band.write((0, 0), (width, height), &mut buf).map_err(gdal_err(path))?;
        }
        ds.close().map_err(gdal_err(path))?;
        Ok(())
    })
}

/// Whether a raster's CRS is geographic (longitude/latitude in degrees).
pub fn is_geographic(crs: &Crs) -> bool {
    crate::init_gdal();
    let srs = match crs {
        Crs::Epsg(code) | Crs::Wkt { epsg: Some(code), .. } => SpatialRef::from_epsg(*code),
        Crs::Wkt { wkt, .. } => SpatialRef::from_wkt(wkt),
    };
    srs.map(|s| s.is_geographic()).unwrap_or(false)
}

/// The EPSG code of the WGS84 UTM zone containing a longitude / latitude (degrees).
pub fn utm_epsg(lon: f64, lat: f64) -> u32 {
    let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) as u32 + 1;
    if lat >= 0.0 { 32600 + zone } else { 32700 + zone }
}

/// Reprojects `src` (every band, bilinear) into a tiled GeoTIFF at `dst` in EPSG `epsg` with
/// square pixels of `pixel` CRS units covering the whole source, atomically. Returns the new
/// georeferencing.
pub fn warp(src: &Path, dst: &Path, epsg: u32, pixel: f64) -> Result<GeoRef, IoError> {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform};
    let r = Raster::open(src)?;
    let g = r.georef()?;
    let mut s_srs = match &g.crs {
        Crs::Epsg(code) | Crs::Wkt { epsg: Some(code), .. } => SpatialRef::from_epsg(*code),
        Crs::Wkt { wkt, .. } => SpatialRef::from_wkt(wkt),
    }
    .map_err(gdal_err(src))?;
    let mut d_srs = SpatialRef::from_epsg(epsg).map_err(gdal_err(dst))?;
    s_srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    d_srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let ct = CoordTransform::new(&s_srs, &d_srs).map_err(gdal_err(src))?;
    let (w, h) = (r.info.width as f64, r.info.height as f64);
    // Corners and edge midpoints of the source, in the target CRS.
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (c, rr) in
        [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h), (w / 2.0, 0.0), (w / 2.0, h), (0.0, h / 2.0), (w, h / 2.0)]
    {
        let p = g.pixel_to_world(c, rr);
        xs.push(p[0]);
        ys.push(p[1]);
    }
    let mut zs = vec![0.0; xs.len()];
    ct.transform_coords(&mut xs, &mut ys, &mut zs).map_err(gdal_err(src))?;
    let (x0, x1) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let (y0, y1) = (
        ys.iter().copied().fold(f64::INFINITY, f64::min),
        ys.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    if pixel.is_nan() || pixel <= 0.0 || ![x0, x1, y0, y1].iter().all(|v| v.is_finite()) {
        return Err(IoError::Format {
            path: src.to_path_buf(),
            format: "raster",
            detail: format!("cannot reproject to EPSG:{epsg}"),
        });
    }
    let (dw, dh) = (((x1 - x0) / pixel).ceil() as usize, ((y1 - y0) / pixel).ceil() as usize);
    let georef = GeoRef { geo_transform: [x0, pixel, 0.0, y1, 0.0, -pixel], crs: Crs::Epsg(epsg) };
    let band_type = r.dataset.rasterband(1).map_err(gdal_err(src))?.band_type();
    if band_type != gdal::raster::GdalDataType::UInt8 {
        return Err(IoError::Unsupported {
            path: src.to_path_buf(),
            detail: format!("reprojection of {} bands", band_type.name()),
        });
    }
    let nb = r.info.bands.len();
    write_atomic_via_path(dst, |tmp| {
        let driver = DriverManager::get_driver_by_name("GTiff").map_err(gdal_err(dst))?;
        let mut opts = RasterCreationOptions::new();
        for (k, v) in [("TILED", "YES"), ("COMPRESS", "DEFLATE"), ("BIGTIFF", "IF_SAFER")] {
            opts.set_name_value(k, v).map_err(gdal_err(dst))?;
        }
        let mut ds = driver
            .create_with_band_type_with_options::<u8, _>(tmp, dw, dh, nb, &opts)
            .map_err(gdal_err(dst))?;
        ds.set_geo_transform(&georef.geo_transform).map_err(gdal_err(dst))?;
        ds.set_spatial_ref(&d_srs).map_err(gdal_err(dst))?;
        gdal::raster::reproject(&r.dataset, &ds).map_err(gdal_err(dst))?;
        ds.close().map_err(gdal_err(dst))?;
        Ok(())
    })?;
    Ok(georef)
}

/// Writes a large GeoTIFF window by window (tiled, DEFLATE), so the whole raster never sits
/// in memory; the file appears at its final path only on [`GeoTiffWriter::finish`].
pub struct GeoTiffWriter {
    path: PathBuf,
    tmp_dir: tempfile::TempDir,
    tmp_path: PathBuf,
    dataset: Dataset,
    width: usize,
    height: usize,
}

impl GeoTiffWriter {
    /// Creates the raster (in a temporary file beside `path`).
    pub fn create<T: Copy + GdalType>(
        path: &Path,
        width: usize,
        height: usize,
        bands: usize,
        georef: &GeoRef,
        nodata: Option<f64>,
    ) -> Result<Self, IoError> {
        crate::init_gdal();
        let os = |source| IoError::Os { path: path.to_path_buf(), source };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp_dir = tempfile::Builder::new().prefix(".geotiff.").tempdir_in(&dir).map_err(os)?;
        let tmp_path = tmp_dir.path().join("out.tif");
        let srs = match &georef.crs {
            Crs::Epsg(code) | Crs::Wkt { epsg: Some(code), .. } => SpatialRef::from_epsg(*code),
            Crs::Wkt { wkt, .. } => SpatialRef::from_wkt(wkt),
        }
        .map_err(gdal_err(path))?;
        let driver = DriverManager::get_driver_by_name("GTiff").map_err(gdal_err(path))?;
        let mut opts = RasterCreationOptions::new();
        for (k, v) in [
            ("TILED", "YES"),
            ("BLOCKXSIZE", "256"),
            ("BLOCKYSIZE", "256"),
            ("COMPRESS", "DEFLATE"),
            ("BIGTIFF", "IF_SAFER"),
        ] {
            opts.set_name_value(k, v).map_err(gdal_err(path))?;
        }
        if bands == 3 || bands == 4 {
            opts.set_name_value("PHOTOMETRIC", "RGB").map_err(gdal_err(path))?;
        }
        let mut dataset = driver
            .create_with_band_type_with_options::<T, _>(&tmp_path, width, height, bands, &opts)
            .map_err(gdal_err(path))?;
        dataset.set_geo_transform(&georef.geo_transform).map_err(gdal_err(path))?;
        dataset.set_spatial_ref(&srs).map_err(gdal_err(path))?;
        if let Some(nd) = nodata {
            for b in 1..=bands {
                dataset
                    .rasterband(b)
                    .map_err(gdal_err(path))?
                    .set_no_data_value(Some(nd))
                    .map_err(gdal_err(path))?;
            }
        }
        Ok(Self { path: path.to_path_buf(), tmp_dir, tmp_path, dataset, width, height })
    }

    /// Writes one window of band `band` (1-based), row-major.
    pub fn write_window<T: Copy + GdalType>(
        &mut self,
        band: usize,
        w: Window,
        data: Vec<T>,
    ) -> Result<(), IoError> {
        if w.col + w.width > self.width || w.row + w.height > self.height || data.len() != w.width * w.height
        {
            return Err(IoError::Format {
                path: self.path.clone(),
                format: "GeoTIFF",
                detail: format!(
                    "window {w:?} with {} values does not fit {}×{}",
                    data.len(),
                    self.width,
                    self.height
                ),
            });
        }
        let mut b = self.dataset.rasterband(band).map_err(gdal_err(&self.path))?;
        let mut buf = gdal::raster::Buffer::new((w.width, w.height), data);
        b.write((w.col as isize, w.row as isize), (w.width, w.height), &mut buf).map_err(gdal_err(&self.path))
    }

    /// Closes the raster and moves it to its final path.
    pub fn finish(self) -> Result<(), IoError> {
        let path = self.path.clone();
        self.dataset.close().map_err(gdal_err(&path))?;
        std::fs::rename(&self.tmp_path, &path)
            .map_err(|source| IoError::Os { path: path.clone(), source })?;
        drop(self.tmp_dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_every_pixel_with_overlap() {
        let t = tiles(1000, 700, 256, 16);
        assert_eq!(t.len(), 4 * 3);
        let mut seen = vec![0u8; 1000 * 700];
        for w in &t {
            for r in w.row..w.row + w.height {
                for c in w.col..w.col + w.width {
                    seen[r * 1000 + c] = 1;
                }
            }
        }
        assert!(seen.iter().all(|s| *s == 1));
        assert_eq!(t[1], Window { col: 240, row: 0, width: 256 + 32, height: 256 + 16 });
    }

    #[test]
    fn write_then_read_window_with_crs() -> Result<(), IoError> {
        let dir = tempfile::tempdir().map_err(|source| IoError::Os { path: "tmp".into(), source })?;
        let path = dir.path().join("ortho.tif");
        let (w, h) = (300, 200);
        let band: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
        let georef =
            GeoRef { geo_transform: [200_000.0, 0.08, 0.0, 550_000.0, 0.0, -0.08], crs: Crs::Epsg(5186) };
        write_geotiff(&path, w, h, &[band.clone(), band.clone(), band.clone()], &georef, None)?;
        let r = Raster::open(&path)?;
        assert_eq!(r.info.crs.as_ref().and_then(Crs::epsg), Some(5186));
        assert!((r.info.gsd_m.unwrap_or(0.0) - 0.08).abs() < 1e-12);
        let win = Window { col: 17, row: 33, width: 50, height: 20 };
        let got: Vec<u8> = r.read_window(2, win)?;
        for rr in 0..20 {
            for cc in 0..50 {
                assert_eq!(got[rr * 50 + cc], band[(33 + rr) * w + 17 + cc]);
            }
        }
        let p = r.georef()?.pixel_to_world(10.5, 20.5);
        let back = r.georef()?.world_to_pixel(p[0], p[1]);
        assert!((back[0] - 10.5).abs() < 1e-9 && (back[1] - 20.5).abs() < 1e-9);
        Ok(())
    }
}
