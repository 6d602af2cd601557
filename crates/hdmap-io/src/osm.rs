//! Lanelet2 maps in OSM XML: the raw file ([`read_osm`]), a summary for `hdmap info`
//! ([`summarize`]), the map as a [`RoadLayout`] ([`read_lanelet2`]), and the vocabulary that maps
//! Lanelet2's linestring and lanelet tags onto the model and back ([`LineModel`],
//! [`lanelet_tags`]), shared with the writer in `hdmap-export`.
//!
//! Lanelet2 keeps nodes in WGS84 latitude/longitude with heights in an `ele` tag; the reader
//! projects them into a projected CRS the caller names (or the UTM zone of the map, which it
//! then reports) — a Lanelet2 map has no CRS of its own, so none is ever assumed silently.
//!
//! Lanelets become [`Lane`]s with the same ids (relation ids), their bounds [`LaneBoundary`]s
//! or [`RoadEdge`]s with the way ids, oriented the way Lanelet2's loader orients them (both
//! bounds along one direction, the left bound on the left). Successors and neighbours follow
//! Lanelet2's geometric rules: a lanelet follows another when both bounds continue through the
//! same nodes, neighbours share a bound. Tags the model does not type are kept in
//! [`RoadLayout::source_tags`], so that writing the map back gives the same tags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hdmap_core::nalgebra::Point3;
use hdmap_core::{
    BoundaryRef, EdgeKind, ElementId, GeoOrigin, Issues, Lane, LaneBoundary, LaneKind, LineType,
    MarkingColor, RoadEdge, RoadLayout, StopLine, VerticalDatum,
};
use quick_xml::events::{BytesStart, Event};

use crate::IoError;
use crate::fsutil::check_input_file;
use crate::layout::{enum_from, enum_str};

/// Tags of one OSM primitive.
pub type Tags = BTreeMap<String, String>;

/// An OSM node: WGS84 position and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct OsmNode {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Tags (`ele`, `local_x`, …).
    pub tags: Tags,
}

/// An OSM way: node references and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct OsmWay {
    /// Node ids in order.
    pub nodes: Vec<i64>,
    /// Tags.
    pub tags: Tags,
}

/// A member of an OSM relation.
#[derive(Debug, Clone, PartialEq)]
pub struct OsmMember {
    /// `node`, `way` or `relation`.
    pub kind: String,
    /// Referenced id.
    pub id: i64,
    /// Role (`left`, `right`, `refers`, `ref_line`, `regulatory_element`, …).
    pub role: String,
}

/// An OSM relation: members and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct OsmRelation {
    /// Members in order.
    pub members: Vec<OsmMember>,
    /// Tags.
    pub tags: Tags,
}

/// The primitives of an OSM XML file, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OsmFile {
    /// Nodes.
    pub nodes: BTreeMap<i64, OsmNode>,
    /// Ways.
    pub ways: BTreeMap<i64, OsmWay>,
    /// Relations.
    pub relations: BTreeMap<i64, OsmRelation>,
}

fn bad(path: &Path, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format: "OSM XML", detail: detail.into() }
}

/// Reads an OSM XML file (as written by JOSM, Lanelet2 or Autoware's tools).
///
/// Fails with the file's name on malformed XML, a node without a finite `lat`/`lon`, a
/// primitive without an id, a way that names a node the file lacks, or a file without `<osm>`.
pub fn read_osm(path: &Path) -> Result<OsmFile, IoError> {
    check_input_file(path)?;
    let text =
        std::fs::read_to_string(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    let mut reader = quick_xml::Reader::from_str(&text);
    reader.config_mut().trim_text(true);
    let mut out = OsmFile::default();
    // The primitive being read: 'n', 'w' or 'r' with its id.
    let mut current: Option<(char, i64)> = None;
    let mut seen_osm = false;
    let mut closed_osm = false;
    loop {
        let pos = reader.buffer_position();
        let event = reader.read_event().map_err(|e| bad(path, format!("XML error at byte {pos}: {e}")))?;
        let (e, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.name().as_ref() {
                    b"node" | b"way" | b"relation" => current = None,
                    b"osm" => closed_osm = true,
                    _ => {}
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let attrs = attributes(path, e)?;
        let get = |k: &str| attrs.get(k).map(String::as_str);
        let id = || -> Result<i64, IoError> {
            get("id")
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| bad(path, format!("<{}> at byte {pos} without an integer id", name_of(e))))
        };
        match e.name().as_ref() {
            b"osm" => seen_osm = true,
            b"node" => {
                let id = id()?;
                let coord = |k: &str| get(k).and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite());
                let (Some(lat), Some(lon)) = (coord("lat"), coord("lon")) else {
                    return Err(bad(path, format!("node {id} without a finite lat/lon")));
                };
                if lat.abs() > 90.0 || lon.abs() > 180.0 {
                    return Err(bad(path, format!("node {id} at lat {lat}, lon {lon}: outside WGS84 range")));
                }
                out.nodes.insert(id, OsmNode { lat, lon, tags: Tags::new() });
                current = (!empty).then_some(('n', id));
            }
            b"way" => {
                let id = id()?;
                out.ways.insert(id, OsmWay { nodes: Vec::new(), tags: Tags::new() });
                current = (!empty).then_some(('w', id));
            }
            b"relation" => {
                let id = id()?;
                out.relations.insert(id, OsmRelation { members: Vec::new(), tags: Tags::new() });
                current = (!empty).then_some(('r', id));
            }
            b"tag" => {
                let (Some(k), Some(v)) = (get("k"), get("v")) else {
                    return Err(bad(path, format!("<tag> at byte {pos} without k/v")));
                };
                let tags = match current {
                    Some(('n', id)) => out.nodes.get_mut(&id).map(|n| &mut n.tags),
                    Some(('w', id)) => out.ways.get_mut(&id).map(|w| &mut w.tags),
                    Some(('r', id)) => out.relations.get_mut(&id).map(|r| &mut r.tags),
                    _ => None,
                };
                if let Some(tags) = tags {
                    tags.insert(k.to_string(), v.to_string());
                }
            }
            b"nd" => {
                let r = get("ref").and_then(|v| v.parse::<i64>().ok());
                match (current, r) {
                    (Some(('w', id)), Some(r)) => {
                        if let Some(w) = out.ways.get_mut(&id) {
                            w.nodes.push(r);
                        }
                    }
                    _ => return Err(bad(path, format!("<nd> at byte {pos} outside a way or without ref"))),
                }
            }
            b"member" => {
                let r = get("ref").and_then(|v| v.parse::<i64>().ok());
                match (current, r) {
                    (Some(('r', id)), Some(r)) => {
                        if let Some(rel) = out.relations.get_mut(&id) {
                            rel.members.push(OsmMember {
                                kind: get("type").unwrap_or("").to_string(),
                                id: r,
                                role: get("role").unwrap_or("").to_string(),
                            });
                        }
                    }
                    _ => {
                        return Err(bad(
                            path,
                            format!("<member> at byte {pos} outside a relation or without ref"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if !seen_osm {
        return Err(bad(path, "no <osm> element: not an OSM XML file"));
    }
    if !closed_osm {
        return Err(IoError::Truncated {
            path: path.to_path_buf(),
            detail: "the file ends before </osm>".into(),
        });
    }
    for (id, w) in &out.ways {
        if let Some(n) = w.nodes.iter().find(|n| !out.nodes.contains_key(n)) {
            return Err(bad(path, format!("way {id} refers to node {n}, which the file lacks")));
        }
    }
    Ok(out)
}

fn name_of(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).to_string()
}

fn attributes(path: &Path, e: &BytesStart<'_>) -> Result<BTreeMap<String, String>, IoError> {
    let mut out = BTreeMap::new();
    for a in e.attributes() {
        let a = a.map_err(|err| bad(path, format!("attribute of <{}>: {err}", name_of(e))))?;
        let v =
            a.unescape_value().map_err(|err| bad(path, format!("attribute of <{}>: {err}", name_of(e))))?;
        out.insert(String::from_utf8_lossy(a.key.as_ref()).to_string(), v.to_string());
    }
    Ok(out)
}

/// What `hdmap info` says about an OSM file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OsmSummary {
    /// Node, way and relation counts.
    pub nodes: usize,
    /// Ways.
    pub ways: usize,
    /// Relations.
    pub relations: usize,
    /// Lanelets (`type=lanelet`) by subtype.
    pub lanelets: BTreeMap<String, usize>,
    /// Regulatory elements by subtype.
    pub regulatory_elements: BTreeMap<String, usize>,
    /// Areas (`type=multipolygon`).
    pub areas: usize,
    /// Ways by `type` tag.
    pub way_types: BTreeMap<String, usize>,
    /// Nodes carrying an `ele` tag.
    pub nodes_with_ele: usize,
    /// `[min_lat, min_lon, max_lat, max_lon]` of the nodes, degrees.
    pub bounds_deg: [f64; 4],
}

/// Counts what an OSM file holds.
pub fn summarize(osm: &OsmFile) -> OsmSummary {
    let count = |it: &mut dyn Iterator<Item = String>| {
        let mut m = BTreeMap::new();
        for k in it {
            *m.entry(k).or_insert(0) += 1;
        }
        m
    };
    let subtype = |t: &Tags| t.get("subtype").cloned().unwrap_or_else(|| "(none)".into());
    let of_type = |ty: &'static str| {
        osm.relations.values().filter(move |r| r.tags.get("type").map(String::as_str) == Some(ty))
    };
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for n in osm.nodes.values() {
        b = [b[0].min(n.lat), b[1].min(n.lon), b[2].max(n.lat), b[3].max(n.lon)];
    }
    OsmSummary {
        nodes: osm.nodes.len(),
        ways: osm.ways.len(),
        relations: osm.relations.len(),
        lanelets: count(&mut of_type("lanelet").map(|r| subtype(&r.tags))),
        regulatory_elements: count(&mut of_type("regulatory_element").map(|r| subtype(&r.tags))),
        areas: of_type("multipolygon").count(),
        way_types: count(
            &mut osm.ways.values().map(|w| w.tags.get("type").cloned().unwrap_or_else(|| "(none)".into())),
        ),
        nodes_with_ele: osm.nodes.values().filter(|n| n.tags.contains_key("ele")).count(),
        bounds_deg: b,
    }
}

/// How a Lanelet2 linestring (`type`, `subtype`, `color`) maps onto the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineModel {
    /// A painted (or virtual) lane boundary.
    Boundary {
        /// Pattern.
        line_type: LineType,
        /// Colour.
        color: MarkingColor,
        /// Paint width, metres (`line_thick` ≥ 0.225 m).
        width_m: f64,
    },
    /// A physical road edge.
    Edge(EdgeKind),
}

/// Paint width the reader gives `line_thin` lines, metres.
pub const THIN_LINE_M: f64 = 0.15;
/// Paint width the reader gives `line_thick` lines, metres (Lanelet2 stores no width).
pub const THICK_LINE_M: f64 = 0.30;

impl LineModel {
    /// The model of a linestring's tags. Types the model has no kind for (`pedestrian_marking`,
    /// `zebra_marking`, `bike_marking`, `keepout`, `rail`, …) become solid white boundaries; the
    /// original tags are kept in the layout's `source_tags` by [`read_lanelet2`].
    pub fn from_tags(tags: &Tags) -> Self {
        let ty = tags.get("type").map(String::as_str).unwrap_or("");
        let sub = tags.get("subtype").map(String::as_str).unwrap_or("");
        let color = match tags.get("color").map(String::as_str) {
            Some("yellow") => MarkingColor::Yellow,
            Some("blue") => MarkingColor::Blue,
            _ => MarkingColor::White,
        };
        let line_type = match sub {
            "dashed" => LineType::Dashed,
            "solid_solid" => LineType::DoubleSolid,
            "dashed_dashed" => LineType::DoubleDashed,
            "solid_dashed" => LineType::SolidDashed,
            "dashed_solid" => LineType::DashedSolid,
            _ => LineType::Solid,
        };
        match ty {
            "line_thin" => LineModel::Boundary { line_type, color, width_m: THIN_LINE_M },
            "line_thick" => LineModel::Boundary { line_type, color, width_m: THICK_LINE_M },
            "virtual" => {
                LineModel::Boundary { line_type: LineType::Virtual, color: MarkingColor::White, width_m: 0.0 }
            }
            "curbstone" => LineModel::Edge(EdgeKind::Curb {
                height_m: match sub {
                    "high" => 0.15,
                    "low" => 0.05,
                    _ => 0.10,
                },
            }),
            "road_border" => LineModel::Edge(EdgeKind::RoadBorder),
            "fence" => LineModel::Edge(EdgeKind::Fence),
            "wall" => LineModel::Edge(EdgeKind::Wall),
            "guard_rail" => LineModel::Edge(EdgeKind::GuardRail),
            _ => LineModel::Boundary { line_type: LineType::Solid, color, width_m: THIN_LINE_M },
        }
    }

    /// The model of a lane boundary.
    pub fn of_boundary(b: &LaneBoundary) -> Self {
        LineModel::Boundary { line_type: b.line_type, color: b.color, width_m: b.width_m }
    }

    /// The Lanelet2 tags of this model (`type`, `subtype`, `color`), canonical: two models
    /// with the same tags mean the same to Lanelet2's traffic rules.
    pub fn tags(&self) -> Vec<(&'static str, &'static str)> {
        match *self {
            LineModel::Boundary { line_type: LineType::Virtual, .. } => vec![("type", "virtual")],
            LineModel::Boundary { line_type, color, width_m } => {
                let subtype = match line_type {
                    LineType::Solid => "solid",
                    LineType::Dashed => "dashed",
                    LineType::DoubleSolid => "solid_solid",
                    LineType::DoubleDashed => "dashed_dashed",
                    LineType::SolidDashed => "solid_dashed",
                    LineType::DashedSolid => "dashed_solid",
                    LineType::Virtual => "",
                };
                let color = match color {
                    MarkingColor::White => "white",
                    MarkingColor::Yellow => "yellow",
                    MarkingColor::Blue => "blue",
                };
                let ty =
                    if width_m >= (THIN_LINE_M + THICK_LINE_M) / 2.0 { "line_thick" } else { "line_thin" };
                vec![("type", ty), ("subtype", subtype), ("color", color)]
            }
            LineModel::Edge(EdgeKind::Curb { height_m }) => {
                vec![("type", "curbstone"), ("subtype", if height_m >= 0.1 { "high" } else { "low" })]
            }
            LineModel::Edge(EdgeKind::RoadBorder) => vec![("type", "road_border")],
            LineModel::Edge(EdgeKind::Fence) => vec![("type", "fence")],
            LineModel::Edge(EdgeKind::Wall) => vec![("type", "wall")],
            LineModel::Edge(EdgeKind::GuardRail) => vec![("type", "guard_rail")],
        }
    }
}

/// Whether pedestrians use lanes of this kind both ways when the map does not say
/// (Lanelet2's default for lanelets without `one_way`).
fn two_way_by_default(kind: LaneKind) -> bool {
    matches!(kind, LaneKind::Walkway | LaneKind::SharedWalkway | LaneKind::Crosswalk | LaneKind::Stairs)
}

/// The canonical Lanelet2 tags of a lane (`subtype`, `one_way`). Lane kinds are named as
/// Lanelet2's lanelet subtypes (`road`, `bicycle_lane`, `crosswalk`, …).
pub fn lanelet_tags(lane: &Lane) -> Vec<(&'static str, String)> {
    vec![("subtype", enum_str(&lane.kind)), ("one_way", if lane.bidirectional { "no" } else { "yes" }.into())]
}

/// The lane kind and direction a lanelet's tags give.
fn lane_from_tags(tags: &Tags) -> (LaneKind, bool) {
    let kind = tags.get("subtype").and_then(|s| enum_from::<LaneKind>(s)).unwrap_or(LaneKind::Road);
    let bidirectional = match tags.get("one_way").map(String::as_str) {
        Some("no" | "false") => true,
        Some(_) => false,
        None => two_way_by_default(kind),
    };
    (kind, bidirectional)
}

/// Whether a lane's imported tags still say what the lane says now (then a writer may write
/// them as they were).
pub fn lanelet_source_tags_agree(lane: &Lane, source: &Tags) -> bool {
    let (kind, bidirectional) = lane_from_tags(source);
    kind == lane.kind && bidirectional == lane.bidirectional
}

/// How to read a Lanelet2 map into a [`RoadLayout`].
#[derive(Debug, Clone, PartialEq)]
pub struct Lanelet2Import {
    /// Projected CRS of the layout; `None` takes the WGS84 UTM zone of the map's centre.
    pub epsg: Option<u32>,
    /// Datum of the `ele` heights (a Lanelet2 map does not record it).
    pub vertical_datum: VerticalDatum,
}

/// Kind of an OSM primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OsmKind {
    /// A way.
    Way,
    /// A relation.
    Relation,
}

/// A Lanelet2 map read into the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Lanelet2Map {
    /// The layout.
    pub layout: RoadLayout,
    /// OSM primitives whose element id differs from their OSM id (negative ids, relation ids
    /// that a way also has): (kind, OSM id) → element id. All others keep their id.
    pub renumbered: BTreeMap<(OsmKind, i64), ElementId>,
}

/// Reads a Lanelet2 OSM map as a [`RoadLayout`] (see the module docs for the mapping).
///
/// Findings the map can live with go to `issues`: nodes without `ele` (height 0), lanelets
/// whose bounds are missing, ways of types the model keeps only as tags.
pub fn read_lanelet2(
    path: &Path,
    import: &Lanelet2Import,
    issues: &mut Issues,
) -> Result<Lanelet2Map, IoError> {
    let osm = read_osm(path)?;
    if osm.nodes.is_empty() {
        return Err(bad(path, "no nodes"));
    }
    // Model ids are one namespace, OSM's are three: ways keep their ids, a relation whose id a
    // way already has (or any negative id, as editors give new primitives) is renumbered above
    // the largest id; the caller gets the table.
    let max_id = osm
        .nodes
        .keys()
        .chain(osm.ways.keys())
        .chain(osm.relations.keys())
        .copied()
        .max()
        .unwrap_or(0)
        .max(0);
    let mut renumbered: BTreeMap<(OsmKind, i64), ElementId> = BTreeMap::new();
    let mut next = max_id as u64 + 1;
    for id in osm.ways.keys().filter(|i| **i < 0) {
        renumbered.insert((OsmKind::Way, *id), ElementId(next));
        next += 1;
    }
    for id in osm.relations.keys().filter(|i| **i < 0 || osm.ways.contains_key(i)) {
        renumbered.insert((OsmKind::Relation, *id), ElementId(next));
        next += 1;
    }
    if !renumbered.is_empty() {
        issues.warn(
            path.display().to_string(),
            format!("{} ids renumbered (negative, or a relation id that a way also has)", renumbered.len()),
        );
    }
    let wid = |id: i64| renumbered.get(&(OsmKind::Way, id)).copied().unwrap_or(ElementId(id as u64));
    let rid = |id: i64| renumbered.get(&(OsmKind::Relation, id)).copied().unwrap_or(ElementId(id as u64));
    // Projection.
    let n = osm.nodes.len() as f64;
    let (mlat, mlon) = osm.nodes.values().fold((0.0, 0.0), |a, p| (a.0 + p.lat / n, a.1 + p.lon / n));
    let epsg = match import.epsg {
        Some(e) => e,
        None => {
            let zone = (((mlon + 180.0) / 6.0).floor() as i64).clamp(0, 59) as u32 + 1;
            let e = if mlat >= 0.0 { 32600 + zone } else { 32700 + zone };
            issues.info(
                path.display().to_string(),
                format!("no CRS asked for: projected to EPSG:{e} (UTM zone of the map)"),
            );
            e
        }
    };
    let ids: Vec<i64> = osm.nodes.keys().copied().collect();
    let mut xy: Vec<[f64; 2]> = osm.nodes.values().map(|p| [p.lon, p.lat]).collect();
    crate::crs::transform_points(4326, epsg, &mut xy)?;
    let mut without_ele = 0usize;
    let mut pos: BTreeMap<i64, Point3<f64>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let node = &osm.nodes[id];
        let z = match node.tags.get("ele").map(|v| v.parse::<f64>()) {
            Some(Ok(z)) if z.is_finite() => z,
            Some(_) => {
                return Err(bad(path, format!("node {id}: ele `{}` is not a number", node.tags["ele"])));
            }
            None => {
                without_ele += 1;
                0.0
            }
        };
        if !(xy[i][0].is_finite() && xy[i][1].is_finite()) {
            return Err(bad(path, format!("node {id} cannot be projected to EPSG:{epsg}")));
        }
        pos.insert(*id, Point3::new(xy[i][0], xy[i][1], z));
    }
    if without_ele > 0 {
        issues.warn(
            path.display().to_string(),
            format!("{without_ele} of {} nodes have no ele tag: height 0", ids.len()),
        );
    }
    let (sx, sy) = pos.values().fold((0.0, 0.0), |a, p| (a.0 + p.x / n, a.1 + p.y / n));
    let origin = GeoOrigin::new(epsg, [sx.round(), sy.round(), 0.0], import.vertical_datum)
        .map_err(|e| bad(path, e.to_string()))?;
    let mut layout = RoadLayout::new(origin);
    let way_points = |w: &OsmWay| -> Vec<Point3<f64>> { w.nodes.iter().map(|n| pos[n]).collect() };

    // Lanelets and the ways that bound them.
    let lanelets: Vec<(i64, &OsmRelation)> = osm
        .relations
        .iter()
        .filter(|(_, r)| r.tags.get("type").map(String::as_str) == Some("lanelet"))
        .map(|(i, r)| (*i, r))
        .collect();
    struct Bounds {
        id: i64,
        left: (i64, bool),
        right: (i64, bool),
    }
    let mut bounds: Vec<Bounds> = Vec::new();
    let mut bound_ways: BTreeSet<i64> = BTreeSet::new();
    for (id, r) in &lanelets {
        let member = |role: &str| r.members.iter().find(|m| m.role == role && m.kind == "way").map(|m| m.id);
        let (Some(l), Some(rt)) = (member("left"), member("right")) else {
            issues.error(format!("lanelet {id}"), "without a left and a right way: skipped");
            continue;
        };
        let (Some(lw), Some(rw)) = (osm.ways.get(&l), osm.ways.get(&rt)) else {
            issues.error(format!("lanelet {id}"), "bound way missing from the file: skipped");
            continue;
        };
        if lw.nodes.len() < 2 || rw.nodes.len() < 2 {
            issues.error(format!("lanelet {id}"), "a bound with fewer than 2 nodes: skipped");
            continue;
        }
        let (lrev, rrev) = orient(&way_points(lw), &way_points(rw));
        bounds.push(Bounds { id: *id, left: (l, lrev), right: (rt, rrev) });
        bound_ways.insert(l);
        bound_ways.insert(rt);
    }
    // Stop lines: ways of type stop_line (referenced or not).
    let mut stop_ways: BTreeSet<i64> = BTreeSet::new();
    let mut skipped_types: BTreeMap<String, usize> = BTreeMap::new();
    for (id, w) in &osm.ways {
        let ty = w.tags.get("type").map(String::as_str).unwrap_or("");
        let edge_or_line = matches!(
            ty,
            "line_thin"
                | "line_thick"
                | "virtual"
                | "curbstone"
                | "road_border"
                | "fence"
                | "wall"
                | "guard_rail"
        );
        if w.nodes.len() < 2 {
            continue;
        }
        if ty == "stop_line" && !bound_ways.contains(id) {
            stop_ways.insert(*id);
            layout.stop_lines.push(StopLine { id: wid(*id), width_m: 0.3, points: way_points(w) });
            layout.source_tags.insert(wid(*id), w.tags.clone());
            continue;
        }
        if !(bound_ways.contains(id) || edge_or_line) {
            *skipped_types
                .entry(if ty.is_empty() { "(none)".into() } else { ty.to_string() })
                .or_insert(0) += 1;
            continue;
        }
        match LineModel::from_tags(&w.tags) {
            LineModel::Boundary { line_type, color, width_m } => layout.lane_boundaries.push(LaneBoundary {
                id: wid(*id),
                line_type,
                color,
                width_m,
                dash: None,
                points: way_points(w),
            }),
            LineModel::Edge(kind) => {
                layout.road_edges.push(RoadEdge { id: wid(*id), kind, points: way_points(w) })
            }
        }
        layout.source_tags.insert(wid(*id), w.tags.clone());
    }
    if !skipped_types.is_empty() {
        issues.info(
            path.display().to_string(),
            format!("ways the road layout has no element for, skipped: {skipped_types:?}"),
        );
    }
    // Stop lines a lanelet refers to through its regulatory elements.
    let mut stop_of: BTreeMap<i64, i64> = BTreeMap::new();
    for (id, r) in &lanelets {
        for m in r.members.iter().filter(|m| m.role == "regulatory_element") {
            if let Some(reg) = osm.relations.get(&m.id) {
                let line = reg.members.iter().find(|x| {
                    x.kind == "way"
                        && matches!(x.role.as_str(), "ref_line" | "refers")
                        && stop_ways.contains(&x.id)
                });
                if let Some(l) = line {
                    stop_of.entry(*id).or_insert(l.id);
                }
            }
        }
    }
    // Topology by Lanelet2's rules: shared end nodes (follows), shared bounds (neighbours).
    let ends = |(way, rev): (i64, bool)| -> (i64, i64) {
        let nodes = &osm.ways[&way].nodes;
        let (a, b) = (nodes[0], nodes[nodes.len() - 1]);
        if rev { (b, a) } else { (a, b) }
    };
    let mut by_start: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
    for b in &bounds {
        by_start.entry((ends(b.left).0, ends(b.right).0)).or_default().push(b.id);
    }
    let mut by_right: BTreeMap<(i64, bool), Vec<i64>> = BTreeMap::new();
    let mut by_left: BTreeMap<(i64, bool), Vec<i64>> = BTreeMap::new();
    for b in &bounds {
        by_right.entry(b.right).or_default().push(b.id);
        by_left.entry(b.left).or_default().push(b.id);
    }
    for b in &bounds {
        let r = &osm.relations[&b.id];
        let (kind, bidirectional) = lane_from_tags(&r.tags);
        let successors: Vec<ElementId> = by_start
            .get(&(ends(b.left).1, ends(b.right).1))
            .map(|v| v.iter().filter(|x| **x != b.id).map(|x| rid(*x)).collect())
            .unwrap_or_default();
        let neighbour = |table: &BTreeMap<(i64, bool), Vec<i64>>, key: (i64, bool)| {
            table.get(&key).and_then(|v| v.iter().find(|x| **x != b.id)).map(|x| rid(*x))
        };
        // Every bound way became a boundary or edge above.
        let bound = |w: i64, rev: bool| oriented(layout.boundary_points(wid(w)).unwrap_or_default(), rev);
        let (left_pts, right_pts) = (bound(b.left.0, b.left.1), bound(b.right.0, b.right.1));
        layout.lanes.push(Lane {
            id: rid(b.id),
            left: BoundaryRef { id: wid(b.left.0), reversed: b.left.1 },
            right: BoundaryRef { id: wid(b.right.0), reversed: b.right.1 },
            center_line: centre_line(&left_pts, &right_pts),
            successors,
            left_neighbour: neighbour(&by_right, b.left),
            right_neighbour: neighbour(&by_left, b.right),
            stop_line: stop_of.get(&b.id).map(|s| wid(*s)),
            in_intersection: r.tags.contains_key("turn_direction"),
            kind,
            bidirectional,
        });
        layout.source_tags.insert(rid(b.id), r.tags.clone());
    }
    Ok(Lanelet2Map { layout, renumbered })
}

fn oriented(p: &[Point3<f64>], reversed: bool) -> Vec<Point3<f64>> {
    let mut v = p.to_vec();
    if reversed {
        v.reverse();
    }
    v
}

fn d2(a: &Point3<f64>, b: &Point3<f64>) -> f64 {
    (a.x - b.x).hypot(a.y - b.y)
}

/// Whether the left and right ways must be reversed so that both run one way with the left
/// one on the left (how Lanelet2's loader orients a lanelet's bounds).
fn orient(l: &[Point3<f64>], r: &[Point3<f64>]) -> (bool, bool) {
    let (l0, l1, r0, r1) = (&l[0], &l[l.len() - 1], &r[0], &r[r.len() - 1]);
    let flip_r = d2(l0, r0) + d2(l1, r1) > d2(l0, r1) + d2(l1, r0);
    let (r0, r1) = if flip_r { (r1, r0) } else { (r0, r1) };
    // Travel direction and the left-minus-right offset of the midpoints.
    let dir = [(l1.x + r1.x - l0.x - r0.x) / 2.0, (l1.y + r1.y - l0.y - r0.y) / 2.0];
    let mean = |p: &[Point3<f64>]| {
        let n = p.len() as f64;
        p.iter().fold([0.0, 0.0], |a, q| [a[0] + q.x / n, a[1] + q.y / n])
    };
    let (ml, mr) = (mean(l), mean(r));
    let off = [ml[0] - mr[0], ml[1] - mr[1]];
    let left_is_left = dir[0] * off[1] - dir[1] * off[0] >= 0.0;
    if left_is_left { (false, flip_r) } else { (true, !flip_r) }
}

/// Arc-length resampled mean of two bounds running the same way: a lane's centre line.
pub fn centre_line(left: &[Point3<f64>], right: &[Point3<f64>]) -> Vec<Point3<f64>> {
    let len = |p: &[Point3<f64>]| p.windows(2).map(|w| (w[1] - w[0]).norm()).sum::<f64>();
    let n = ((len(left).max(len(right)) / 1.0).ceil() as usize).clamp(1, 10_000) + 1;
    let at = |p: &[Point3<f64>], u: f64| -> Point3<f64> {
        let total = len(p);
        if total <= 0.0 {
            return p[0];
        }
        let target = u * total;
        let mut s = 0.0;
        for w in p.windows(2) {
            let l = (w[1] - w[0]).norm();
            if s + l >= target && l > 0.0 {
                return w[0] + (w[1] - w[0]) * ((target - s) / l);
            }
            s += l;
        }
        p[p.len() - 1]
    };
    (0..n)
        .map(|i| {
            let u = i as f64 / (n - 1) as f64;
            let (a, b) = (at(left, u), at(right, u));
            Point3::from((a.coords + b.coords) / 2.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_puts_the_left_bound_on_the_left() {
        let p = |x: f64, y: f64| Point3::new(x, y, 0.0);
        // Travel +x: left bound at y = 3, right at y = 0.
        let l = vec![p(0.0, 3.0), p(10.0, 3.0)];
        let r = vec![p(0.0, 0.0), p(10.0, 0.0)];
        assert_eq!(orient(&l, &r), (false, false));
        // Right stored backwards.
        let rb: Vec<_> = r.iter().rev().copied().collect();
        assert_eq!(orient(&l, &rb), (false, true));
        // Both stored backwards: travel is -x, where y = 3 is on the right... unless both flip.
        let lb: Vec<_> = l.iter().rev().copied().collect();
        assert_eq!(orient(&lb, &rb), (true, true));
        // Centre line of the oriented pair runs midway.
        let c = centre_line(&l, &r);
        assert!(c.iter().all(|q| (q.y - 1.5).abs() < 1e-12) && c.len() == 11);
    }

    #[test]
    fn line_tags_round_trip_through_the_model() {
        for (ty, sub) in [
            ("line_thin", "solid"),
            ("line_thin", "dashed"),
            ("line_thick", "solid_solid"),
            ("line_thin", "solid_dashed"),
            ("line_thin", "dashed_solid"),
            ("curbstone", "high"),
            ("curbstone", "low"),
        ] {
            let tags =
                Tags::from([("type".to_string(), ty.to_string()), ("subtype".to_string(), sub.to_string())]);
            let m = LineModel::from_tags(&tags);
            let back = m.tags();
            assert_eq!(back[0], ("type", ty), "{ty} {sub}");
            assert_eq!(back[1], ("subtype", sub), "{ty} {sub}");
        }
    }
}
