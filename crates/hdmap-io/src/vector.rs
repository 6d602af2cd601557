//! Vector layers through GDAL/OGR: GeoPackage, GeoJSON, ESRI Shapefile (and whatever else OGR
//! reads). Geometries keep their z.

use std::collections::BTreeMap;
use std::path::Path;

use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType, geometry_type_flatten,
    geometry_type_to_name,
};
use gdal::{Dataset, DriverManager};
use hdmap_core::Crs;
use serde::Serialize;

use crate::IoError;
use crate::crs::crs_from_wkt;
use crate::fsutil::{check_input_file, write_atomic_via_path};

/// A 3D geometry (z = 0 for 2D sources).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Geom {
    /// A point.
    Point([f64; 3]),
    /// A polyline.
    LineString(Vec<[f64; 3]>),
    /// Outer ring then holes; rings closed (first = last) as OGR stores them.
    Polygon(Vec<Vec<[f64; 3]>>),
    /// Several polylines.
    MultiLineString(Vec<Vec<[f64; 3]>>),
    /// Several polygons.
    MultiPolygon(Vec<Vec<Vec<[f64; 3]>>>),
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// Integer.
    Int(i64),
    /// Floating point.
    Real(f64),
    /// Text.
    Text(String),
}

/// A feature: geometry plus attributes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VectorFeature {
    /// The geometry, if any.
    pub geometry: Option<Geom>,
    /// Attributes by name.
    pub properties: BTreeMap<String, Value>,
}

/// A named layer of features in one CRS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VectorLayer {
    /// Layer name.
    pub name: String,
    /// CRS declared by the layer.
    pub crs: Option<Crs>,
    /// Features.
    pub features: Vec<VectorFeature>,
}

/// Summary of one layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Layer name.
    pub name: String,
    /// Number of features.
    pub feature_count: u64,
    /// Geometry types seen (e.g. `3D Line String`) with counts.
    pub geometry_types: BTreeMap<String, u64>,
    /// Attribute fields (name, type).
    pub fields: Vec<(String, String)>,
    /// CRS.
    pub crs: Option<Crs>,
    /// Extent `[min_x, min_y, max_x, max_y]`.
    pub extent: Option<[f64; 4]>,
}

/// Summary of a vector dataset.
#[derive(Debug, Clone, Serialize)]
pub struct VectorInfo {
    /// OGR driver short name.
    pub driver: String,
    /// Layers.
    pub layers: Vec<LayerInfo>,
}

fn gdal_err(path: &Path) -> impl Fn(gdal::errors::GdalError) -> IoError + '_ {
    move |source| IoError::Gdal { path: path.to_path_buf(), source }
}

fn open(path: &Path) -> Result<Dataset, IoError> {
    crate::init_gdal();
    // A shapefile is several files; the .shp itself must exist and be non-empty.
    check_input_file(path)?;
    let ds = Dataset::open(path).map_err(gdal_err(path))?;
    if ds.layer_count() == 0 {
        return Err(IoError::Unsupported { path: path.to_path_buf(), detail: "no vector layers".into() });
    }
    Ok(ds)
}

fn layer_crs<L: LayerAccess>(layer: &L) -> Option<Crs> {
    layer.spatial_ref().and_then(|s| s.to_wkt().ok()).and_then(|w| crs_from_wkt(&w))
}

/// Summarises every layer of a vector file.
pub fn vector_info(path: &Path) -> Result<VectorInfo, IoError> {
    let ds = open(path)?;
    let mut layers = Vec::new();
    for mut layer in ds.layers() {
        let fields = layer
            .defn()
            .fields()
            .map(|f| (f.name(), gdal::vector::field_type_to_name(f.field_type())))
            .collect();
        let mut geometry_types = BTreeMap::new();
        for f in layer.features() {
            let name = f
                .geometry()
                .map(|g| geometry_type_to_name(g.geometry_type()))
                .unwrap_or_else(|| "none".into());
            *geometry_types.entry(name).or_insert(0) += 1;
        }
        let extent = layer.try_get_extent().ok().flatten().map(|e| [e.MinX, e.MinY, e.MaxX, e.MaxY]);
        layers.push(LayerInfo {
            name: layer.name(),
            feature_count: layer.feature_count(),
            geometry_types,
            fields,
            crs: layer_crs(&layer),
            extent,
        });
    }
    Ok(VectorInfo { driver: ds.driver().short_name(), layers })
}

fn ring(g: &Geometry) -> Vec<[f64; 3]> {
    let mut pts = Vec::new();
    g.get_points(&mut pts);
    pts.into_iter().map(|(x, y, z)| [x, y, z]).collect()
}

fn to_geom(path: &Path, g: &Geometry) -> Result<Geom, IoError> {
    use OGRwkbGeometryType as T;
    let flat = geometry_type_flatten(g.geometry_type());
    let sub = |i: usize| -> Geometry { g.get_geometry(i).clone() };
    Ok(match flat {
        T::wkbPoint => {
            let (x, y, z) = g.get_point(0);
            Geom::Point([x, y, z])
        }
        T::wkbLineString => Geom::LineString(ring(g)),
        T::wkbPolygon => Geom::Polygon((0..g.geometry_count()).map(|i| ring(&sub(i))).collect()),
        T::wkbMultiLineString => {
            Geom::MultiLineString((0..g.geometry_count()).map(|i| ring(&sub(i))).collect())
        }
        T::wkbMultiPolygon => Geom::MultiPolygon(
            (0..g.geometry_count())
                .map(|i| {
                    let p = sub(i);
                    (0..p.geometry_count()).map(|j| ring(&p.get_geometry(j).clone())).collect()
                })
                .collect(),
        ),
        other => {
            return Err(IoError::Unsupported {
                path: path.to_path_buf(),
                detail: format!("geometry type {}", geometry_type_to_name(other)),
            });
        }
    })
}

/// Reads every layer of a vector file.
pub fn read_vector(path: &Path) -> Result<Vec<VectorLayer>, IoError> {
    let ds = open(path)?;
    let mut out = Vec::new();
    for mut layer in ds.layers() {
        let crs = layer_crs(&layer);
        let name = layer.name();
        let mut features = Vec::new();
        for f in layer.features() {
            let geometry = match f.geometry() {
                Some(g) if !g.is_empty() => Some(to_geom(path, g)?),
                _ => None,
            };
            let mut properties = BTreeMap::new();
            for (k, v) in f.fields() {
                let v = match v {
                    Some(FieldValue::IntegerValue(i)) => Value::Int(i as i64),
                    Some(FieldValue::Integer64Value(i)) => Value::Int(i),
                    Some(FieldValue::RealValue(r)) => Value::Real(r),
                    Some(FieldValue::StringValue(s)) => Value::Text(s),
                    Some(other) => Value::Text(format!("{other:?}")),
                    None => continue,
                };
                properties.insert(k, v);
            }
            features.push(VectorFeature { geometry, properties });
        }
        out.push(VectorLayer { name, crs, features });
    }
    Ok(out)
}

fn gdal_geom(path: &Path, g: &Geom) -> Result<Geometry, IoError> {
    use OGRwkbGeometryType as T;
    let e = gdal_err(path);
    let line = |ty, pts: &[[f64; 3]]| -> Result<Geometry, IoError> {
        let mut l = Geometry::empty(ty).map_err(gdal_err(path))?;
        for p in pts {
            l.add_point((p[0], p[1], p[2]));
        }
        Ok(l)
    };
    let polygon = |rings: &[Vec<[f64; 3]>]| -> Result<Geometry, IoError> {
        let mut poly = Geometry::empty(T::wkbPolygon25D).map_err(gdal_err(path))?;
        for r in rings {
            let mut pts = r.clone();
            if pts.first() != pts.last()
                && let Some(first) = pts.first().copied()
            {
                pts.push(first);
            }
            poly.add_geometry(line(T::wkbLinearRing, &pts)?).map_err(gdal_err(path))?;
        }
        Ok(poly)
    };
    Ok(match g {
        Geom::Point(p) => line(T::wkbPoint25D, &[*p])?,
        Geom::LineString(pts) => line(T::wkbLineString25D, pts)?,
        Geom::Polygon(rings) => polygon(rings)?,
        Geom::MultiLineString(ls) => {
            let mut m = Geometry::empty(T::wkbMultiLineString25D).map_err(&e)?;
            for l in ls {
                m.add_geometry(line(T::wkbLineString25D, l)?).map_err(&e)?;
            }
            m
        }
        Geom::MultiPolygon(ps) => {
            let mut m = Geometry::empty(T::wkbMultiPolygon25D).map_err(&e)?;
            for p in ps {
                m.add_geometry(polygon(p)?).map_err(&e)?;
            }
            m
        }
    })
}

/// Which OGR driver a path's extension selects.
fn driver_for(path: &Path) -> Result<&'static str, IoError> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    Ok(match ext.as_str() {
        "gpkg" => "GPKG",
        "geojson" | "json" => "GeoJSON",
        "shp" => "ESRI Shapefile",
        _ => {
            return Err(IoError::Unsupported {
                path: path.to_path_buf(),
                detail: "vector output must end in .gpkg, .geojson or .shp".into(),
            });
        }
    })
}

/// Writes layers to a vector file (format by extension: `.gpkg` any number of layers;
/// `.geojson` and `.shp` exactly one), all in `crs`, atomically. Geometry type and attribute
/// schema of each layer come from its features; attributes missing in a feature are null.
pub fn write_vector(path: &Path, layers: &[VectorLayer], crs: &Crs) -> Result<(), IoError> {
    let driver_name = driver_for(path)?;
    crate::init_gdal();
    if driver_name != "GPKG" && layers.len() != 1 {
        return Err(IoError::Unsupported {
            path: path.to_path_buf(),
            detail: format!("{driver_name} holds one layer, got {}", layers.len()),
        });
    }
    let srs = match crs {
        Crs::Epsg(code) | Crs::Wkt { epsg: Some(code), .. } => SpatialRef::from_epsg(*code),
        Crs::Wkt { wkt, .. } => SpatialRef::from_wkt(wkt),
    }
    .map_err(gdal_err(path))?;
    let is_shp = driver_name == "ESRI Shapefile";
    let write = |target: &Path| -> Result<(), IoError> {
        let driver = DriverManager::get_driver_by_name(driver_name).map_err(gdal_err(path))?;
        let mut ds = driver.create_vector_only(target).map_err(gdal_err(path))?;
        for layer in layers {
            write_layer(path, &mut ds, layer, &srs)?;
        }
        ds.close().map_err(gdal_err(path))?;
        Ok(())
    };
    if is_shp {
        // A shapefile is .shp + .shx + .dbf + .prj: write them in a temporary directory, then
        // rename each beside the target (the .shp last, so a reader never sees a .shp without
        // its companions).
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let os = |source| IoError::Os { path: path.to_path_buf(), source };
        let tmp = tempfile::Builder::new().prefix(".shp.").tempdir_in(dir).map_err(os)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let tmp_shp = tmp.path().join(format!("{stem}.shp"));
        write(&tmp_shp)?;
        let mut parts: Vec<_> =
            std::fs::read_dir(tmp.path()).map_err(os)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        parts.sort_by_key(|p| p.extension().is_some_and(|e| e == "shp"));
        for p in parts {
            let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            std::fs::rename(&p, dir.join(name)).map_err(os)?;
        }
        Ok(())
    } else {
        write_atomic_via_path(path, write)
    }
}

fn write_layer(path: &Path, ds: &mut Dataset, layer: &VectorLayer, srs: &SpatialRef) -> Result<(), IoError> {
    use OGRwkbGeometryType as T;
    let ty = match layer.features.iter().find_map(|f| f.geometry.as_ref()) {
        Some(Geom::Point(_)) => T::wkbPoint25D,
        Some(Geom::LineString(_)) => T::wkbLineString25D,
        Some(Geom::Polygon(_)) => T::wkbPolygon25D,
        Some(Geom::MultiLineString(_)) => T::wkbMultiLineString25D,
        Some(Geom::MultiPolygon(_)) => T::wkbMultiPolygon25D,
        None => T::wkbUnknown,
    };
    let mut schema: BTreeMap<&str, OGRFieldType::Type> = BTreeMap::new();
    for f in &layer.features {
        for (k, v) in &f.properties {
            let t = match v {
                Value::Int(_) => OGRFieldType::OFTInteger64,
                Value::Real(_) => OGRFieldType::OFTReal,
                Value::Text(_) => OGRFieldType::OFTString,
            };
            let e = schema.entry(k.as_str()).or_insert(t);
            if *e != t {
                // Mixed types in one column: fall back to the most general.
                *e = if *e != OGRFieldType::OFTString && t != OGRFieldType::OFTString {
                    OGRFieldType::OFTReal
                } else {
                    OGRFieldType::OFTString
                };
            }
        }
    }
    // A shapefile's .dbf header holds the date it was written: fix it, like OGR_CURRENT_DATE
    // for GeoPackages, so that outputs are byte-identical from run to run.
    let shp_options = ["DBF_DATE_LAST_UPDATE=2000-01-01"];
    let options = (ds.driver().short_name() == "ESRI Shapefile").then_some(&shp_options[..]);
    let lyr = ds
        .create_layer(LayerOptions { name: &layer.name, srs: Some(srs), ty, options })
        .map_err(gdal_err(path))?;
    let fields: Vec<(&str, OGRFieldType::Type)> = schema.iter().map(|(k, v)| (*k, *v)).collect();
    lyr.create_defn_fields(&fields).map_err(gdal_err(path))?;
    for feat in &layer.features {
        let mut f = gdal::vector::Feature::new(lyr.defn()).map_err(gdal_err(path))?;
        if let Some(g) = &feat.geometry {
            f.set_geometry(gdal_geom(path, g)?).map_err(gdal_err(path))?;
        }
        for (k, v) in &feat.properties {
            let idx = f.field_index(k).map_err(gdal_err(path))?;
            let ft = schema[k.as_str()];
            let value = match (v, ft) {
                (Value::Int(i), OGRFieldType::OFTInteger64) => FieldValue::Integer64Value(*i),
                (Value::Int(i), OGRFieldType::OFTReal) => FieldValue::RealValue(*i as f64),
                (Value::Real(r), OGRFieldType::OFTReal) => FieldValue::RealValue(*r),
                (Value::Text(s), _) => FieldValue::StringValue(s.clone()),
                (Value::Int(i), _) => FieldValue::StringValue(i.to_string()),
                (Value::Real(r), _) => FieldValue::StringValue(r.to_string()),
            };
            f.set_field(idx, &value).map_err(gdal_err(path))?;
        }
        f.create(&lyr).map_err(gdal_err(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<VectorLayer> {
        let lines = VectorLayer {
            name: "lane_boundary".into(),
            crs: None,
            features: vec![VectorFeature {
                geometry: Some(Geom::LineString(vec![
                    [200_000.0, 550_000.0, 35.5],
                    [200_010.0, 550_001.0, 35.75],
                ])),
                properties: BTreeMap::from([
                    ("id".to_string(), Value::Int(7)),
                    ("line_type".to_string(), Value::Text("dashed".into())),
                    ("width_m".to_string(), Value::Real(0.15)),
                ]),
            }],
        };
        let polys = VectorLayer {
            name: "crosswalk".into(),
            crs: None,
            features: vec![VectorFeature {
                geometry: Some(Geom::Polygon(vec![vec![
                    [0.0, 0.0, 1.0],
                    [4.0, 0.0, 1.0],
                    [4.0, 10.0, 1.5],
                    [0.0, 10.0, 1.5],
                    [0.0, 0.0, 1.0],
                ]])),
                properties: BTreeMap::from([("id".to_string(), Value::Int(8))]),
            }],
        };
        vec![lines, polys]
    }

    #[test]
    fn gpkg_and_geojson_round_trip_with_z_and_crs() -> Result<(), IoError> {
        let dir = tempfile::tempdir().map_err(|source| IoError::Os { path: "tmp".into(), source })?;
        let gpkg = dir.path().join("layout.gpkg");
        write_vector(&gpkg, &layers(), &Crs::Epsg(5186))?;
        let back = read_vector(&gpkg)?;
        assert_eq!(back.len(), 2);
        for (a, b) in layers().iter().zip(&back) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.features, b.features);
            assert_eq!(b.crs.as_ref().and_then(Crs::epsg), Some(5186));
        }
        let json = dir.path().join("lines.geojson");
        write_vector(&json, &layers()[..1], &Crs::Epsg(5186))?;
        let back = read_vector(&json)?;
        assert_eq!(back[0].features, layers()[0].features);
        let shp = dir.path().join("cw.shp");
        write_vector(&shp, &layers()[1..], &Crs::Epsg(5186))?;
        let info = vector_info(&shp)?;
        assert_eq!(info.layers[0].feature_count, 1);
        assert_eq!(info.layers[0].crs.as_ref().and_then(Crs::epsg), Some(5186));
        Ok(())
    }
}
