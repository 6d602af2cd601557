//! [`RoadLayout`] files: GeoJSON (one FeatureCollection, `kind` property per feature) and
//! GeoPackage (one layer per element kind), both in the layout's CRS with 3D coordinates.
//!
//! The GeoJSON carries the legacy `crs` member (GDAL/QGIS read it; RFC 7946 readers assume
//! WGS84, which a projected layout is not) and an `hdmap:origin` member with the full
//! [`GeoOrigin`]; both are required when reading. The GeoPackage stores the origin in a
//! `hdmap_origin` table. Reading either back gives the same `RoadLayout` (coordinates are
//! written with shortest round-trip formatting).

use std::collections::BTreeMap;
use std::path::Path;

use hdmap_core::nalgebra::Point3;
use hdmap_core::{
    ArrowKind, BoundaryRef, Crosswalk, Crs, DashPattern, EdgeKind, ElementId, GeoOrigin, Lane, LaneBoundary,
    LaneKind, LineType, MarkKind, MarkingColor, RoadCenterline, RoadEdge, RoadLayout, StopLine, SurfaceMark,
};
use serde_json::{Map, Value as Json, json};

use crate::IoError;
use crate::fsutil::{check_input_file, write_bytes_atomic};
use crate::vector::{Geom, Value, VectorFeature, VectorLayer, read_vector, write_vector};

/// Layer / `kind` names, in write order.
pub const KINDS: [&str; 7] =
    ["lane_boundary", "road_edge", "road_centerline", "stop_line", "crosswalk", "surface_mark", "lane"];

/// The serde (snake_case) name of a unit enum value.
pub(crate) fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// The unit enum value of a serde (snake_case) name.
pub(crate) fn enum_from<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(Json::String(s.to_string())).ok()
}

fn pts(p: &[Point3<f64>]) -> Vec<[f64; 3]> {
    p.iter().map(|p| [p.x, p.y, p.z]).collect()
}

fn ids(v: &[ElementId]) -> String {
    v.iter().map(|i| i.0.to_string()).collect::<Vec<_>>().join(",")
}

/// Every element as (kind, geometry, properties), in a stable order.
fn features(layout: &RoadLayout) -> Vec<(&'static str, Geom, BTreeMap<String, Value>)> {
    let mut out = Vec::new();
    let int = |v: u64| Value::Int(v as i64);
    let text = |s: String| Value::Text(s);
    for b in &layout.lane_boundaries {
        let mut p = BTreeMap::from([
            ("id".to_string(), int(b.id.0)),
            ("line_type".to_string(), text(enum_str(&b.line_type))),
            ("color".to_string(), text(enum_str(&b.color))),
            ("width_m".to_string(), Value::Real(b.width_m)),
        ]);
        if let Some(d) = b.dash {
            p.insert("dash_paint_m".into(), Value::Real(d.paint_m));
            p.insert("dash_gap_m".into(), Value::Real(d.gap_m));
            p.insert("dash_phase_m".into(), Value::Real(d.phase_m));
        }
        out.push(("lane_boundary", Geom::LineString(pts(&b.points)), p));
    }
    for e in &layout.road_edges {
        let mut p = BTreeMap::from([("id".to_string(), int(e.id.0))]);
        match e.kind {
            EdgeKind::Curb { height_m } => {
                p.insert("edge_kind".into(), text("curb".into()));
                p.insert("curb_height_m".into(), Value::Real(height_m));
            }
            EdgeKind::RoadBorder | EdgeKind::Fence | EdgeKind::Wall | EdgeKind::GuardRail => {
                p.insert("edge_kind".into(), text(enum_str(&e.kind)));
            }
        }
        out.push(("road_edge", Geom::LineString(pts(&e.points)), p));
    }
    for c in &layout.road_centerlines {
        let p = BTreeMap::from([("id".to_string(), int(c.id.0))]);
        out.push(("road_centerline", Geom::LineString(pts(&c.points)), p));
    }
    for s in &layout.stop_lines {
        let p = BTreeMap::from([
            ("id".to_string(), int(s.id.0)),
            ("width_m".to_string(), Value::Real(s.width_m)),
        ]);
        out.push(("stop_line", Geom::LineString(pts(&s.points)), p));
    }
    for c in &layout.crosswalks {
        let p = BTreeMap::from([
            ("id".to_string(), int(c.id.0)),
            ("stripe_m".to_string(), Value::Real(c.stripe_m)),
            ("gap_m".to_string(), Value::Real(c.gap_m)),
        ]);
        out.push(("crosswalk", Geom::Polygon(vec![closed(&c.polygon)]), p));
    }
    for m in &layout.surface_marks {
        let mut p = BTreeMap::from([("id".to_string(), int(m.id.0))]);
        match &m.kind {
            MarkKind::Arrow(a) => {
                p.insert("mark_kind".into(), text("arrow".into()));
                p.insert("arrow".into(), text(enum_str(a)));
            }
            MarkKind::CrosswalkAhead => {
                p.insert("mark_kind".into(), text("crosswalk_ahead".into()));
            }
            MarkKind::Text(t) => {
                p.insert("mark_kind".into(), text("text".into()));
                p.insert("text".into(), text(t.clone()));
            }
            MarkKind::SpeedBump => {
                p.insert("mark_kind".into(), text("speed_bump".into()));
            }
            MarkKind::Other(t) => {
                p.insert("mark_kind".into(), text("other".into()));
                p.insert("text".into(), text(t.clone()));
            }
        }
        out.push(("surface_mark", Geom::Polygon(vec![closed(&m.polygon)]), p));
    }
    for l in &layout.lanes {
        let mut p = BTreeMap::from([
            ("id".to_string(), int(l.id.0)),
            ("left_id".to_string(), int(l.left.id.0)),
            ("left_reversed".to_string(), int(l.left.reversed as u64)),
            ("right_id".to_string(), int(l.right.id.0)),
            ("right_reversed".to_string(), int(l.right.reversed as u64)),
            ("successors".to_string(), text(ids(&l.successors))),
            ("in_intersection".to_string(), int(l.in_intersection as u64)),
            ("lane_kind".to_string(), text(enum_str(&l.kind))),
            ("bidirectional".to_string(), int(l.bidirectional as u64)),
        ]);
        if let Some(n) = l.left_neighbour {
            p.insert("left_neighbour".into(), int(n.0));
        }
        if let Some(n) = l.right_neighbour {
            p.insert("right_neighbour".into(), int(n.0));
        }
        if let Some(s) = l.stop_line {
            p.insert("stop_line".into(), int(s.0));
        }
        out.push(("lane", Geom::LineString(pts(&l.center_line)), p));
    }
    // Imported attributes the model does not type travel as one JSON object per feature.
    for (_, _, p) in out.iter_mut() {
        let id = match p.get("id") {
            Some(Value::Int(v)) => ElementId(*v as u64),
            _ => continue,
        };
        if let Some(tags) = layout.source_tags.get(&id) {
            p.insert("source_tags".into(), Value::Text(serde_json::to_string(tags).unwrap_or_default()));
        }
    }
    out
}

fn closed(ring: &[Point3<f64>]) -> Vec<[f64; 3]> {
    let mut v = pts(ring);
    if let Some(first) = v.first().copied() {
        v.push(first);
    }
    v
}

fn origin_json(o: &GeoOrigin) -> Json {
    serde_json::to_value(o).unwrap_or(Json::Null)
}

/// Writes a layout as GeoJSON, atomically.
pub fn write_layout_geojson(path: &Path, layout: &RoadLayout) -> Result<(), IoError> {
    let feats: Vec<Json> = features(layout)
        .into_iter()
        .map(|(kind, geom, props)| {
            let mut p = Map::new();
            p.insert("kind".into(), Json::String(kind.into()));
            for (k, v) in props {
                p.insert(k, serde_json::to_value(v).unwrap_or(Json::Null));
            }
            let geometry = match geom {
                Geom::LineString(c) => json!({"type": "LineString", "coordinates": c}),
                Geom::Polygon(r) => json!({"type": "Polygon", "coordinates": r}),
                other => json!({"type": "GeometryCollection", "geometries": [], "unsupported": format!("{other:?}")}),
            };
            json!({"type": "Feature", "properties": p, "geometry": geometry})
        })
        .collect();
    let doc = json!({
        "type": "FeatureCollection",
        "name": "road_layout",
        "crs": {"type": "name", "properties": {"name": format!("urn:ogc:def:crs:EPSG::{}", layout.origin.epsg)}},
        "hdmap:origin": origin_json(&layout.origin),
        "features": feats,
    });
    let text = serde_json::to_string(&doc).map_err(|e| IoError::Format {
        path: path.to_path_buf(),
        format: "GeoJSON",
        detail: e.to_string(),
    })?;
    write_bytes_atomic(path, text.as_bytes())
}

/// Writes a layout as a GeoPackage with one layer per element kind plus `hdmap_origin`.
pub fn write_layout_gpkg(path: &Path, layout: &RoadLayout) -> Result<(), IoError> {
    let mut layers: Vec<VectorLayer> =
        KINDS.iter().map(|k| VectorLayer { name: k.to_string(), crs: None, features: Vec::new() }).collect();
    for (kind, geom, properties) in features(layout) {
        if let Some(l) = layers.iter_mut().find(|l| l.name == kind) {
            l.features.push(VectorFeature { geometry: Some(geom), properties });
        }
    }
    let o = &layout.origin;
    layers.push(VectorLayer {
        name: "hdmap_origin".into(),
        crs: None,
        features: vec![VectorFeature {
            geometry: None,
            properties: BTreeMap::from([
                ("epsg".to_string(), Value::Int(o.epsg as i64)),
                ("origin_x".to_string(), Value::Real(o.origin[0])),
                ("origin_y".to_string(), Value::Real(o.origin[1])),
                ("origin_z".to_string(), Value::Real(o.origin[2])),
                ("vertical_datum".to_string(), Value::Text(o.vertical_datum.to_string())),
            ]),
        }],
    });
    write_vector(path, &layers, &Crs::Epsg(o.epsg))
}

fn bad(path: &Path, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format: "road layout", detail: detail.into() }
}

/// Builds a layout from (kind, geometry, properties) features.
fn from_features(
    path: &Path,
    origin: GeoOrigin,
    feats: Vec<(String, Geom, BTreeMap<String, Value>)>,
) -> Result<RoadLayout, IoError> {
    let mut layout = RoadLayout::new(origin);
    for (i, (kind, geom, p)) in feats.into_iter().enumerate() {
        let at = format!("feature {} ({kind})", i + 1);
        let get_i = |k: &str| match p.get(k) {
            Some(Value::Int(v)) => Ok(*v),
            Some(Value::Real(v)) if v.fract() == 0.0 => Ok(*v as i64),
            _ => Err(bad(path, format!("{at}: missing integer `{k}`"))),
        };
        let get_f = |k: &str| match p.get(k) {
            Some(Value::Real(v)) => Ok(*v),
            Some(Value::Int(v)) => Ok(*v as f64),
            _ => Err(bad(path, format!("{at}: missing number `{k}`"))),
        };
        let get_s = |k: &str| match p.get(k) {
            Some(Value::Text(v)) => Ok(v.clone()),
            _ => Err(bad(path, format!("{at}: missing text `{k}`"))),
        };
        let opt_id = |k: &str| get_i(k).ok().map(|v| ElementId(v as u64));
        let id = ElementId(get_i("id")? as u64);
        if let Some(Value::Text(t)) = p.get("source_tags") {
            let tags: BTreeMap<String, String> =
                serde_json::from_str(t).map_err(|e| bad(path, format!("{at}: source_tags: {e}")))?;
            layout.source_tags.insert(id, tags);
        }
        let line = |g: &Geom| match g {
            Geom::LineString(c) => Ok(c.iter().map(|p| Point3::new(p[0], p[1], p[2])).collect::<Vec<_>>()),
            _ => Err(bad(path, format!("{at}: expected a LineString"))),
        };
        let ring = |g: &Geom| match g {
            Geom::Polygon(r) if !r.is_empty() => {
                let mut v: Vec<Point3<f64>> = r[0].iter().map(|p| Point3::new(p[0], p[1], p[2])).collect();
                if v.len() > 1 && v.first() == v.last() {
                    v.pop();
                }
                Ok(v)
            }
            _ => Err(bad(path, format!("{at}: expected a Polygon"))),
        };
        match kind.as_str() {
            "lane_boundary" => {
                let dash = match (get_f("dash_paint_m"), get_f("dash_gap_m")) {
                    (Ok(paint_m), Ok(gap_m)) => {
                        Some(DashPattern { paint_m, gap_m, phase_m: get_f("dash_phase_m").unwrap_or(0.0) })
                    }
                    _ => None,
                };
                let lt = get_s("line_type")?;
                let color = get_s("color")?;
                layout.lane_boundaries.push(LaneBoundary {
                    id,
                    line_type: enum_from::<LineType>(&lt)
                        .ok_or_else(|| bad(path, format!("{at}: line_type `{lt}`")))?,
                    color: enum_from::<MarkingColor>(&color)
                        .ok_or_else(|| bad(path, format!("{at}: color `{color}`")))?,
                    width_m: get_f("width_m")?,
                    dash,
                    points: line(&geom)?,
                });
            }
            "road_edge" => {
                let kind = match get_s("edge_kind")?.as_str() {
                    "curb" => EdgeKind::Curb { height_m: get_f("curb_height_m")? },
                    other => enum_from::<EdgeKind>(other)
                        .ok_or_else(|| bad(path, format!("{at}: edge_kind `{other}`")))?,
                };
                layout.road_edges.push(RoadEdge { id, kind, points: line(&geom)? });
            }
            "road_centerline" => layout.road_centerlines.push(RoadCenterline { id, points: line(&geom)? }),
            "stop_line" => {
                layout.stop_lines.push(StopLine { id, width_m: get_f("width_m")?, points: line(&geom)? })
            }
            "crosswalk" => layout.crosswalks.push(Crosswalk {
                id,
                polygon: ring(&geom)?,
                stripe_m: get_f("stripe_m")?,
                gap_m: get_f("gap_m")?,
            }),
            "surface_mark" => {
                let kind = match get_s("mark_kind")?.as_str() {
                    "arrow" => {
                        let a = get_s("arrow")?;
                        MarkKind::Arrow(
                            enum_from::<ArrowKind>(&a)
                                .ok_or_else(|| bad(path, format!("{at}: arrow `{a}`")))?,
                        )
                    }
                    "crosswalk_ahead" => MarkKind::CrosswalkAhead,
                    "text" => MarkKind::Text(get_s("text")?),
                    "speed_bump" => MarkKind::SpeedBump,
                    "other" => MarkKind::Other(get_s("text").unwrap_or_default()),
                    other => return Err(bad(path, format!("{at}: mark_kind `{other}`"))),
                };
                layout.surface_marks.push(SurfaceMark { id, kind, polygon: ring(&geom)? });
            }
            "lane" => {
                let succ = get_s("successors").unwrap_or_default();
                let successors = succ
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.trim().parse::<u64>().map(ElementId))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| bad(path, format!("{at}: successors `{succ}`")))?;
                layout.lanes.push(Lane {
                    id,
                    left: BoundaryRef {
                        id: ElementId(get_i("left_id")? as u64),
                        reversed: get_i("left_reversed")? != 0,
                    },
                    right: BoundaryRef {
                        id: ElementId(get_i("right_id")? as u64),
                        reversed: get_i("right_reversed")? != 0,
                    },
                    center_line: line(&geom)?,
                    successors,
                    left_neighbour: opt_id("left_neighbour"),
                    right_neighbour: opt_id("right_neighbour"),
                    stop_line: opt_id("stop_line"),
                    in_intersection: get_i("in_intersection")? != 0,
                    // Files written before lane kinds existed hold road lanes, one way.
                    kind: match get_s("lane_kind") {
                        Ok(k) => enum_from::<LaneKind>(&k)
                            .ok_or_else(|| bad(path, format!("{at}: lane_kind `{k}`")))?,
                        Err(_) => LaneKind::Road,
                    },
                    bidirectional: get_i("bidirectional").unwrap_or(0) != 0,
                });
            }
            other => return Err(bad(path, format!("{at}: unknown kind `{other}`"))),
        }
    }
    Ok(layout)
}

fn json_geom(path: &Path, g: &Json) -> Result<Geom, IoError> {
    let coords = |v: &Json| -> Result<Vec<[f64; 3]>, IoError> {
        v.as_array()
            .ok_or_else(|| bad(path, "coordinates are not an array"))?
            .iter()
            .map(|p| {
                let a = p.as_array().ok_or_else(|| bad(path, "a position is not an array"))?;
                let f = |i: usize| a.get(i).and_then(Json::as_f64);
                match (f(0), f(1)) {
                    (Some(x), Some(y)) => Ok([x, y, f(2).unwrap_or(0.0)]),
                    _ => Err(bad(path, "a position has no x/y")),
                }
            })
            .collect()
    };
    match g["type"].as_str() {
        Some("LineString") => Ok(Geom::LineString(coords(&g["coordinates"])?)),
        Some("Polygon") => Ok(Geom::Polygon(
            g["coordinates"]
                .as_array()
                .ok_or_else(|| bad(path, "polygon without rings"))?
                .iter()
                .map(coords)
                .collect::<Result<_, _>>()?,
        )),
        other => Err(bad(path, format!("geometry type {other:?}"))),
    }
}

/// Reads a layout GeoJSON written by [`write_layout_geojson`] (or any FeatureCollection with
/// the same properties and an `hdmap:origin` member).
pub fn read_layout_geojson(path: &Path) -> Result<RoadLayout, IoError> {
    check_input_file(path)?;
    let text =
        std::fs::read_to_string(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    let doc: Json = serde_json::from_str(&text).map_err(|e| IoError::Format {
        path: path.to_path_buf(),
        format: "GeoJSON",
        detail: e.to_string(),
    })?;
    let origin: GeoOrigin =
        serde_json::from_value(doc["hdmap:origin"].clone()).map_err(|e| IoError::MissingCrs {
            path: path.to_path_buf(),
            detail: format!("no valid `hdmap:origin` member ({e})"),
        })?;
    let mut feats = Vec::new();
    for f in doc["features"].as_array().ok_or_else(|| bad(path, "no features array"))? {
        let props = f["properties"].as_object().ok_or_else(|| bad(path, "feature without properties"))?;
        let kind = props
            .get("kind")
            .and_then(Json::as_str)
            .ok_or_else(|| bad(path, "feature without `kind`"))?
            .to_string();
        let mut p = BTreeMap::new();
        for (k, v) in props {
            let v = match v {
                Json::Number(n) if n.is_i64() || n.is_u64() => Value::Int(n.as_i64().unwrap_or(i64::MAX)),
                Json::Number(n) => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
                Json::String(s) => Value::Text(s.clone()),
                _ => continue,
            };
            p.insert(k.clone(), v);
        }
        feats.push((kind, json_geom(path, &f["geometry"])?, p));
    }
    from_features(path, origin, feats)
}

/// Reads a layout GeoPackage written by [`write_layout_gpkg`].
pub fn read_layout_gpkg(path: &Path) -> Result<RoadLayout, IoError> {
    let layers = read_vector(path)?;
    let meta = layers.iter().find(|l| l.name == "hdmap_origin").and_then(|l| l.features.first()).ok_or_else(
        || IoError::MissingCrs { path: path.to_path_buf(), detail: "no `hdmap_origin` table".into() },
    )?;
    let f = |k: &str| match meta.properties.get(k) {
        Some(Value::Real(v)) => Some(*v),
        Some(Value::Int(v)) => Some(*v as f64),
        _ => None,
    };
    let datum = match meta.properties.get("vertical_datum") {
        Some(Value::Text(s)) => s.parse().map_err(|_| bad(path, format!("vertical datum `{s}`")))?,
        _ => return Err(bad(path, "hdmap_origin has no vertical_datum")),
    };
    let (Some(epsg), Some(x), Some(y), Some(z)) = (f("epsg"), f("origin_x"), f("origin_y"), f("origin_z"))
    else {
        return Err(bad(path, "hdmap_origin is incomplete"));
    };
    let origin = GeoOrigin::new(epsg as u32, [x, y, z], datum)
        .map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })?;
    let mut feats = Vec::new();
    for l in layers.into_iter().filter(|l| KINDS.contains(&l.name.as_str())) {
        for ft in l.features {
            let geom =
                ft.geometry.ok_or_else(|| bad(path, format!("{} feature without geometry", l.name)))?;
            feats.push((l.name.clone(), geom, ft.properties));
        }
    }
    from_features(path, origin, feats)
}
