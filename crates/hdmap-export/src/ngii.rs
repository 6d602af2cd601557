//! The road layout in the NGII / NAVER LABS HD-map shapefile schema.
//!
//! NAVER LABS' HD-map dataset (Pangyo, Sangam; v1.0, 2019) ships its road layout as the
//! shapefiles `A1_LANE_3D` (lane lines), `A2_STOP_3D` (stop lines), `A3_LINK_3D` (lane centre
//! lines), `C1_NODE_3D` (nodes joining links), `B2_SURFSIGN_LINE_3D` (guide lines),
//! `B2_SURFSIGN_DIRECTION_3D` (arrows) and `B2_SURFSIGN_PLANE_3D` (crosswalks and other
//! painted areas), in WGS84 / UTM zone 52N with ellipsoidal heights. Its attribute catalogue is
//! a PDF that is not public here, so the attribute names and codes follow the Korean NGII
//! precision road map (`ID`, `Type`, `Kind`, `L_LinkID`, `R_LinkID`, `FromNodeID`,
//! `ToNodeID`, `LaneNo`; line kind 530 = stop line, surface mark type 5 = crosswalk), and
//! `docs/formats/ngii.md` lists every field and code this writer uses.
//!
//! Heights become ellipsoidal: the layout's heights plus the geoid undulation `N` of its
//! vertical datum, from a geoid grid (any GDAL raster of `N` over latitude/longitude, e.g.
//! NGII's KNGeoid18 or PROJ's `egm96_15.gtx`) or, for a small area, a constant the user gives.
//! Without either the layer is not written and an issue says why (never a silent datum mix).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdmap_core::nalgebra::Point3;
use hdmap_core::{
    ArrowKind, ElementId, Issues, LaneKind, LineType, MarkKind, MarkingColor, RoadLayout, VerticalDatum,
};
use hdmap_io::raster::{Raster, Window};
use hdmap_io::vector::{Geom, Value, VectorFeature, VectorLayer, write_vector};
use serde::{Deserialize, Serialize};

use crate::ExportError;

/// Settings of the NGII / NAVER LABS shapefile layer (`[export.ngii]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NgiiConfig {
    /// Write the shapefiles (`road_layout/ngii/`).
    pub enabled: bool,
    /// EPSG code of the shapefiles' CRS; the NAVER LABS dataset uses WGS84 / UTM zone 52N.
    pub epsg: u32,
    /// A geoid grid (GDAL raster of the geoid height above the ellipsoid, metres, over WGS84
    /// latitude/longitude) for the layout's vertical datum: heights are written as
    /// layout height + N. Relative paths are relative to the config file.
    pub geoid_grid: Option<PathBuf>,
    /// A constant geoid undulation N, metres, for the whole area (instead of a grid; fine for
    /// an area of a few km where N varies by centimetres, or for simulated data).
    pub geoid_undulation_m: Option<f64>,
}

impl Default for NgiiConfig {
    fn default() -> Self {
        Self { enabled: true, epsg: 32652, geoid_grid: None, geoid_undulation_m: None }
    }
}

impl NgiiConfig {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), ExportError> {
        if self.geoid_grid.is_some() && self.geoid_undulation_m.is_some() {
            return Err(ExportError::Layout(
                "export.ngii: give geoid_grid or geoid_undulation_m, not both".into(),
            ));
        }
        if let Some(n) = self.geoid_undulation_m
            && !(n.is_finite() && n.abs() < 200.0)
        {
            return Err(ExportError::Layout(format!(
                "export.ngii.geoid_undulation_m = {n}: must be a finite height in metres (|N| < 200)"
            )));
        }
        Ok(())
    }
}

/// What [`write_ngii`] wrote.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NgiiSummary {
    /// Shapefile name (without extension) → feature count, for the files written.
    pub layers: BTreeMap<String, usize>,
    /// Layers of the schema not written, with the reason.
    pub skipped: BTreeMap<String, String>,
    /// Where the heights' geoid undulation came from (`ellipsoidal`, `grid:<file>`,
    /// `constant:<N>`).
    pub height_source: String,
    /// Range of the undulation applied, metres `[min, max]`.
    pub undulation_m: [f64; 2],
}

/// Shapefile names of the schema.
pub const LAYERS: [&str; 7] = [
    "A1_LANE_3D",
    "A2_STOP_3D",
    "A3_LINK_3D",
    "C1_NODE_3D",
    "B2_SURFSIGN_LINE_3D",
    "B2_SURFSIGN_DIRECTION_3D",
    "B2_SURFSIGN_PLANE_3D",
];

/// NGII line `Type`: colour digit (1 yellow, 2 white, 3 blue), count digit (1 single,
/// 2 double), pattern digit (1 solid, 2 dashed, 3 left solid / right dashed, 4 left dashed /
/// right solid); `999` for a line without paint.
pub fn line_type_code(line_type: LineType, color: MarkingColor) -> i64 {
    let c = match color {
        MarkingColor::Yellow => 1,
        MarkingColor::White => 2,
        MarkingColor::Blue => 3,
    };
    let (n, p) = match line_type {
        LineType::Solid => (1, 1),
        LineType::Dashed => (1, 2),
        LineType::DoubleSolid => (2, 1),
        LineType::DoubleDashed => (2, 2),
        LineType::SolidDashed => (2, 3),
        LineType::DashedSolid => (2, 4),
        LineType::Virtual => return 999,
    };
    c * 100 + n * 10 + p
}

/// NGII line `Kind`: 501 centre line (yellow), 503 lane line, 504 bus-lane line (blue),
/// 530 stop line, 599 other (unpainted boundaries, road edges).
pub fn line_kind_code(line_type: LineType, color: MarkingColor) -> i64 {
    match (line_type, color) {
        (LineType::Virtual, _) => 599,
        (_, MarkingColor::Yellow) => 501,
        (_, MarkingColor::Blue) => 504,
        (_, MarkingColor::White) => 503,
    }
}

/// `Type` of a direction mark (B2_SURFSIGN_DIRECTION_3D).
pub fn arrow_code(kind: ArrowKind) -> i64 {
    match kind {
        ArrowKind::Straight => 1,
        ArrowKind::Left => 2,
        ArrowKind::Right => 3,
        ArrowKind::StraightLeft => 4,
        ArrowKind::StraightRight => 5,
        ArrowKind::LeftRight => 6,
        ArrowKind::UTurn => 7,
    }
}

/// `Type` of a painted area (B2_SURFSIGN_PLANE_3D): 5 crosswalk (NGII), 1 crosswalk-ahead
/// diamond, 3 text, 4 speed bump, 9 other.
pub fn plane_code(kind: Option<&MarkKind>) -> i64 {
    match kind {
        None => 5,
        Some(MarkKind::CrosswalkAhead) => 1,
        Some(MarkKind::Text(_)) => 3,
        Some(MarkKind::SpeedBump) => 4,
        Some(MarkKind::Arrow(_)) | Some(MarkKind::Other(_)) => 9,
    }
}

fn lane_kind_name(kind: LaneKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Geoid undulation over WGS84 latitude/longitude.
enum Geoid {
    Zero,
    Constant(f64),
    Grid { path: PathBuf, values: Vec<f32>, width: usize, height: usize, gt: [f64; 6], nodata: Option<f64> },
}

impl Geoid {
    fn load(path: &Path) -> Result<Self, ExportError> {
        let r = Raster::open(path)?;
        let georef = r.georef()?;
        if !hdmap_io::raster::is_geographic(&georef.crs) {
            return Err(ExportError::Io(hdmap_io::IoError::Unsupported {
                path: path.to_path_buf(),
                detail: "a geoid grid must be on latitude/longitude".into(),
            }));
        }
        let (width, height) = (r.info.width, r.info.height);
        let values = r.read_window::<f32>(1, Window { col: 0, row: 0, width, height })?;
        let nodata = r.info.bands.first().and_then(|b| b.nodata);
        Ok(Geoid::Grid { path: path.to_path_buf(), values, width, height, gt: georef.geo_transform, nodata })
    }

    /// N at (lat, lon), bilinear; `None` outside the grid or on no-data.
    fn at(&self, lat: f64, lon: f64) -> Option<f64> {
        match self {
            Geoid::Zero => Some(0.0),
            Geoid::Constant(n) => Some(*n),
            Geoid::Grid { values, width, height, gt, nodata, .. } => {
                // Grids come in −180..180 or 0..360 longitudes: try both.
                [lon, lon + 360.0, lon - 360.0].into_iter().find_map(|lon| {
                    // Pixel centres at gt[0] + (i + 0.5) gt[1].
                    let c = (lon - gt[0]) / gt[1] - 0.5;
                    let r = (lat - gt[3]) / gt[5] - 0.5;
                    if !(c >= 0.0 && r >= 0.0 && c <= (*width - 1) as f64 && r <= (*height - 1) as f64) {
                        return None;
                    }
                    let (c0, r0) = (c.floor() as usize, r.floor() as usize);
                    let (c1, r1) = ((c0 + 1).min(width - 1), (r0 + 1).min(height - 1));
                    let (fc, fr) = (c - c0 as f64, r - r0 as f64);
                    let v = |rr: usize, cc: usize| {
                        let x = values[rr * width + cc] as f64;
                        (x.is_finite() && nodata.is_none_or(|nd| x != nd)).then_some(x)
                    };
                    let top = v(r0, c0)? * (1.0 - fc) + v(r0, c1)? * fc;
                    let bottom = v(r1, c0)? * (1.0 - fc) + v(r1, c1)? * fc;
                    Some(top * (1.0 - fr) + bottom * fr)
                })
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Geoid::Zero => "ellipsoidal".into(),
            Geoid::Constant(n) => format!("constant:{n}"),
            Geoid::Grid { path, .. } => format!("grid:{}", path.display()),
        }
    }
}

/// Layout coordinates → shapefile CRS with ellipsoidal heights.
struct Reproject {
    from: u32,
    to: u32,
    geoid: Geoid,
    undulation: [f64; 2],
}

impl Reproject {
    fn line(&mut self, pts: &[Point3<f64>]) -> Result<Vec<[f64; 3]>, ExportError> {
        let mut ll: Vec<[f64; 2]> = pts.iter().map(|p| [p.x, p.y]).collect();
        let mut xy = ll.clone();
        hdmap_io::crs::transform_points(self.from, 4326, &mut ll)?;
        hdmap_io::crs::transform_points(self.from, self.to, &mut xy)?;
        let mut out = Vec::with_capacity(pts.len());
        for ((p, [lon, lat]), [x, y]) in pts.iter().zip(ll).zip(xy) {
            let n = self.geoid.at(lat, lon).ok_or_else(|| {
                ExportError::Projection(format!(
                    "geoid {} has no undulation at lat {lat:.5}°, lon {lon:.5}°",
                    self.geoid.describe()
                ))
            })?;
            self.undulation = [self.undulation[0].min(n), self.undulation[1].max(n)];
            out.push([x, y, p.z + n]);
        }
        Ok(out)
    }

    fn ring(&mut self, pts: &[Point3<f64>]) -> Result<Vec<[f64; 3]>, ExportError> {
        let mut r = self.line(pts)?;
        if let Some(&first) = r.first()
            && r.last() != Some(&first)
        {
            r.push(first);
        }
        Ok(r)
    }
}

fn length_3d(pts: &[Point3<f64>]) -> f64 {
    pts.windows(2).map(|w| (w[1] - w[0]).norm()).sum()
}

fn id_text(id: ElementId) -> Value {
    Value::Text(id.0.to_string())
}

fn opt_id(id: Option<ElementId>) -> Value {
    Value::Text(id.map(|i| i.0.to_string()).unwrap_or_default())
}

fn ids_text(ids: &[ElementId]) -> Value {
    Value::Text(ids.iter().map(|i| i.0.to_string()).collect::<Vec<_>>().join(";"))
}

/// Union-find over lane ends: a node is where a lane ends and its successors start.
fn lane_nodes(layout: &RoadLayout) -> (Vec<usize>, Vec<usize>, usize) {
    let n = layout.lanes.len();
    // Slot 2i = start of lane i, 2i + 1 = end of lane i.
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let index: BTreeMap<ElementId, usize> = layout.lanes.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    for (i, lane) in layout.lanes.iter().enumerate() {
        for s in &lane.successors {
            if let Some(&j) = index.get(s) {
                let (a, b) = (find(&mut parent, 2 * i + 1), find(&mut parent, 2 * j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut number: BTreeMap<usize, usize> = BTreeMap::new();
    let mut slot_node = vec![0; 2 * n];
    for (slot, node) in slot_node.iter_mut().enumerate() {
        let root = find(&mut parent, slot);
        let next = number.len();
        *node = *number.entry(root).or_insert(next);
    }
    let from = (0..n).map(|i| slot_node[2 * i]).collect();
    let to = (0..n).map(|i| slot_node[2 * i + 1]).collect();
    (from, to, number.len())
}

/// Writes the layout's NGII / NAVER LABS shapefiles into `dir` (created); each shapefile is
/// written atomically. Layers of the schema the layout has nothing for are not written and
/// listed in the summary; when the heights cannot be made ellipsoidal nothing is written and
/// an issue says what to configure.
pub fn write_ngii(
    dir: &Path,
    layout: &RoadLayout,
    config: &NgiiConfig,
    issues: &mut Issues,
) -> Result<NgiiSummary, ExportError> {
    config.validate()?;
    let mut summary = NgiiSummary::default();
    let geoid = match (&layout.origin.vertical_datum, &config.geoid_grid, config.geoid_undulation_m) {
        (VerticalDatum::Ellipsoidal, None, None) => Geoid::Zero,
        (VerticalDatum::Ellipsoidal, _, _) => {
            return Err(ExportError::Layout(
                "export.ngii: the layout's heights are already ellipsoidal; remove geoid_grid / \
                 geoid_undulation_m"
                    .into(),
            ));
        }
        (_, Some(grid), None) => Geoid::load(grid)?,
        (_, None, Some(n)) => Geoid::Constant(n),
        (datum, _, _) => {
            let why = format!(
                "the schema wants ellipsoidal heights and the layout's are {datum}; set \
                 export.ngii.geoid_grid (a {datum} geoid grid) or export.ngii.geoid_undulation_m"
            );
            issues.warn("ngii", format!("NGII shapefiles not written: {why}"));
            summary.height_source = format!("none ({datum})");
            for l in LAYERS {
                summary.skipped.insert(l.to_string(), why.clone());
            }
            return Ok(summary);
        }
    };
    summary.height_source = geoid.describe();
    let mut rp = Reproject {
        from: layout.origin.epsg,
        to: config.epsg,
        geoid,
        undulation: [f64::INFINITY, f64::NEG_INFINITY],
    };
    let layers = build_layers(layout, &mut rp)?;
    summary.undulation_m = rp.undulation;
    std::fs::create_dir_all(dir)
        .map_err(|source| hdmap_io::IoError::Os { path: dir.to_path_buf(), source })?;
    let crs = hdmap_core::Crs::Epsg(config.epsg);
    for layer in layers {
        if layer.features.is_empty() {
            let what = match layer.name.as_str() {
                "B2_SURFSIGN_LINE_3D" => "the road model has no painted guide lines",
                _ => "the layout has no element of this kind",
            };
            summary.skipped.insert(layer.name.clone(), what.to_string());
            continue;
        }
        let path = dir.join(format!("{}.shp", layer.name));
        write_vector(&path, std::slice::from_ref(&layer), &crs)?;
        summary.layers.insert(layer.name.clone(), layer.features.len());
    }
    Ok(summary)
}

fn feature(geometry: Geom, properties: Vec<(&str, Value)>) -> VectorFeature {
    VectorFeature {
        geometry: Some(geometry),
        properties: properties.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

fn build_layers(layout: &RoadLayout, rp: &mut Reproject) -> Result<Vec<VectorLayer>, ExportError> {
    let mut out: BTreeMap<&str, Vec<VectorFeature>> = LAYERS.iter().map(|l| (*l, Vec::new())).collect();
    // Which lanes lie left / right of each boundary, in the boundary's point direction.
    let mut sides: BTreeMap<ElementId, (Vec<ElementId>, Vec<ElementId>)> = BTreeMap::new();
    for lane in &layout.lanes {
        // A lane's left boundary has the lane on its right unless it runs against the lane.
        let (l, r) = (lane.left, lane.right);
        let e = sides.entry(l.id).or_default();
        if l.reversed {
            e.0.push(lane.id)
        } else {
            e.1.push(lane.id)
        }
        let e = sides.entry(r.id).or_default();
        if r.reversed { e.1.push(lane.id) } else { e.0.push(lane.id) }
    }
    let none = (Vec::new(), Vec::new());
    let color_name = |c: MarkingColor| match c {
        MarkingColor::White => "white",
        MarkingColor::Yellow => "yellow",
        MarkingColor::Blue => "blue",
    };
    let a1 = out.get_mut("A1_LANE_3D").expect("layer");
    for b in &layout.lane_boundaries {
        let (left, right) = sides.get(&b.id).unwrap_or(&none);
        let line_type = serde_json::to_value(b.line_type).ok().and_then(|v| v.as_str().map(str::to_string));
        a1.push(feature(
            Geom::LineString(rp.line(&b.points)?),
            vec![
                ("ID", id_text(b.id)),
                ("Type", Value::Int(line_type_code(b.line_type, b.color))),
                ("Kind", Value::Int(line_kind_code(b.line_type, b.color))),
                ("L_LinkID", ids_text(left)),
                ("R_LinkID", ids_text(right)),
                ("LineType", Value::Text(line_type.unwrap_or_default())),
                ("Color", Value::Text(color_name(b.color).into())),
                ("Width_m", Value::Real(b.width_m)),
                ("Paint_m", Value::Real(b.dash.map_or(0.0, |d| d.paint_m))),
                ("Gap_m", Value::Real(b.dash.map_or(0.0, |d| d.gap_m))),
                ("EdgeKind", Value::Text(String::new())),
            ],
        ));
    }
    for e in &layout.road_edges {
        let (left, right) = sides.get(&e.id).unwrap_or(&none);
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Object(m) => m.keys().next().cloned(),
                _ => None,
            })
            .unwrap_or_default();
        a1.push(feature(
            Geom::LineString(rp.line(&e.points)?),
            vec![
                ("ID", id_text(e.id)),
                ("Type", Value::Int(999)),
                ("Kind", Value::Int(599)),
                ("L_LinkID", ids_text(left)),
                ("R_LinkID", ids_text(right)),
                ("LineType", Value::Text("none".into())),
                ("Color", Value::Text(String::new())),
                ("Width_m", Value::Real(0.0)),
                ("Paint_m", Value::Real(0.0)),
                ("Gap_m", Value::Real(0.0)),
                ("EdgeKind", Value::Text(kind)),
            ],
        ));
    }
    for s in &layout.stop_lines {
        let lanes: Vec<ElementId> =
            layout.lanes.iter().filter(|l| l.stop_line == Some(s.id)).map(|l| l.id).collect();
        out.get_mut("A2_STOP_3D").expect("layer").push(feature(
            Geom::LineString(rp.line(&s.points)?),
            vec![
                ("ID", id_text(s.id)),
                ("Kind", Value::Int(530)),
                ("LinkID", ids_text(&lanes)),
                ("Width_m", Value::Real(s.width_m)),
            ],
        ));
    }
    let (from, to, node_count) = lane_nodes(layout);
    // Lane number from the left among same-direction neighbours (1 = leftmost).
    let by_id: BTreeMap<ElementId, &hdmap_core::Lane> = layout.lanes.iter().map(|l| (l.id, l)).collect();
    for (i, lane) in layout.lanes.iter().enumerate() {
        let mut lane_no = 1;
        let mut cur = lane.left_neighbour;
        while let Some(c) = cur.and_then(|c| by_id.get(&c)) {
            lane_no += 1;
            if lane_no > layout.lanes.len() {
                break;
            }
            cur = c.left_neighbour;
        }
        out.get_mut("A3_LINK_3D").expect("layer").push(feature(
            Geom::LineString(rp.line(&lane.center_line)?),
            vec![
                ("ID", id_text(lane.id)),
                ("FromNodeID", Value::Text(format!("N{}", from[i]))),
                ("ToNodeID", Value::Text(format!("N{}", to[i]))),
                ("L_LinkID", opt_id(lane.left_neighbour)),
                ("R_LinkID", opt_id(lane.right_neighbour)),
                ("L_LaneID", id_text(lane.left.id)),
                ("R_LaneID", id_text(lane.right.id)),
                ("LaneNo", Value::Int(lane_no as i64)),
                ("Kind", Value::Text(lane_kind_name(lane.kind))),
                ("InterSect", Value::Int(lane.in_intersection as i64)),
                ("Bidir", Value::Int(lane.bidirectional as i64)),
                ("StopID", opt_id(lane.stop_line)),
                ("Length", Value::Real(length_3d(&lane.center_line))),
            ],
        ));
    }
    // A node sits at the mean of the lane ends it joins.
    let mut sum = vec![(Point3::origin(), 0usize, 0usize, 0usize); node_count];
    for (i, lane) in layout.lanes.iter().enumerate() {
        if let (Some(first), Some(last)) = (lane.center_line.first(), lane.center_line.last()) {
            let s = &mut sum[from[i]];
            s.0 += first.coords;
            s.1 += 1;
            s.3 += 1;
            let e = &mut sum[to[i]];
            e.0 += last.coords;
            e.1 += 1;
            e.2 += 1;
        }
    }
    for (n, (p, count, ends, starts)) in sum.into_iter().enumerate() {
        if count == 0 {
            continue;
        }
        let p = Point3::from(p.coords / count as f64);
        let xyz = rp.line(&[p])?[0];
        out.get_mut("C1_NODE_3D").expect("layer").push(feature(
            Geom::Point(xyz),
            vec![
                ("ID", Value::Text(format!("N{n}"))),
                // 1: links meet here; 2: the network starts or ends here.
                ("NodeType", Value::Int(if ends > 0 && starts > 0 { 1 } else { 2 })),
                ("InLinks", Value::Int(ends as i64)),
                ("OutLinks", Value::Int(starts as i64)),
            ],
        ));
    }
    for m in &layout.surface_marks {
        let ring = rp.ring(&m.polygon)?;
        match &m.kind {
            MarkKind::Arrow(a) => out.get_mut("B2_SURFSIGN_DIRECTION_3D").expect("layer").push(feature(
                Geom::Polygon(vec![ring]),
                vec![
                    ("ID", id_text(m.id)),
                    ("Type", Value::Int(arrow_code(*a))),
                    ("Kind", Value::Text(a.name().into())),
                ],
            )),
            other => {
                let name = match other {
                    MarkKind::CrosswalkAhead => "crosswalk_ahead".to_string(),
                    MarkKind::Text(t) => format!("text:{t}"),
                    MarkKind::SpeedBump => "speed_bump".to_string(),
                    MarkKind::Other(o) => format!("other:{o}"),
                    MarkKind::Arrow(_) => unreachable!("matched above"),
                };
                out.get_mut("B2_SURFSIGN_PLANE_3D").expect("layer").push(feature(
                    Geom::Polygon(vec![ring]),
                    vec![
                        ("ID", id_text(m.id)),
                        ("Type", Value::Int(plane_code(Some(other)))),
                        ("Kind", Value::Text(name)),
                    ],
                ))
            }
        }
    }
    for c in &layout.crosswalks {
        let ring = rp.ring(&c.polygon)?;
        out.get_mut("B2_SURFSIGN_PLANE_3D").expect("layer").push(feature(
            Geom::Polygon(vec![ring]),
            vec![
                ("ID", id_text(c.id)),
                ("Type", Value::Int(plane_code(None))),
                ("Kind", Value::Text("crosswalk".into())),
            ],
        ));
    }
    Ok(LAYERS
        .iter()
        .map(|name| VectorLayer {
            name: name.to_string(),
            crs: None,
            features: out.remove(name).unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_codes_are_distinct_per_pattern_and_colour() {
        let types = [
            LineType::Solid,
            LineType::Dashed,
            LineType::DoubleSolid,
            LineType::DoubleDashed,
            LineType::SolidDashed,
            LineType::DashedSolid,
        ];
        let mut seen = std::collections::BTreeSet::new();
        for t in types {
            for c in [MarkingColor::White, MarkingColor::Yellow, MarkingColor::Blue] {
                assert!(seen.insert(line_type_code(t, c)), "{t:?} {c:?} reuses a code");
            }
        }
        assert_eq!(line_type_code(LineType::Virtual, MarkingColor::White), 999);
    }

    #[test]
    fn egm96_grid_agrees_with_proj() -> Result<(), Box<dyn std::error::Error>> {
        // PROJ's own EGM96 grid, as Debian's proj-data installs it.
        let grid = Path::new("/usr/share/proj/egm96_15.gtx");
        if !grid.exists() {
            eprintln!("skip: {} not installed", grid.display());
            return Ok(());
        }
        let g = Geoid::load(grid)?;
        // Reference: PROJ transforming EGM96 heights (EPSG:5773) to WGS84 ellipsoidal heights.
        use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
        let mut a = SpatialRef::from_definition("EPSG:4326+5773")?;
        let mut b = SpatialRef::from_epsg(4979)?;
        a.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        b.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let ct = CoordTransform::new(&a, &b)?;
        for (lat, lon) in [(37.4, 127.1), (37.58, 126.89), (49.0, 8.4), (-33.9, 151.2), (40.0, -105.0)] {
            let (mut x, mut y, mut z) = ([lon], [lat], [0.0]);
            ct.transform_coords(&mut x, &mut y, &mut z)?;
            let ours = g.at(lat, lon).ok_or("outside grid")?;
            assert!((ours - z[0]).abs() < 0.02, "N at {lat},{lon}: ours {ours:.3} PROJ {:.3}", z[0]);
        }
        Ok(())
    }
}
