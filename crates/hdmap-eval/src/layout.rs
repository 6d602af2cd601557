//! Road-layout metrics: polylines and outlines are sampled every 0.25 m; a predicted sample is
//! a true positive when a ground-truth element of the same class lies within the tolerance
//! (precision), a ground-truth sample is found when a predicted element of its class lies
//! within the tolerance (recall). Position error = distance of matched predicted samples;
//! height error = |z − z_truth| at the nearest ground-truth point. Topology: predicted lanes
//! are matched to ground-truth lanes by centre-line overlap, and successor / neighbour edges
//! are compared (F1); links between consecutive pieces of one ground-truth lane are ignored.

use std::collections::{BTreeMap, HashMap, HashSet};

use hdmap_core::{ElementId, LineType, MarkKind, RoadLayout};
use serde::Serialize;

/// Scores of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassScore {
    /// Class name.
    pub class: String,
    /// Predicted elements.
    pub predicted: usize,
    /// Ground-truth elements.
    pub truth: usize,
    /// Share of predicted samples near ground truth of the class.
    pub precision: f64,
    /// Share of ground-truth samples near a prediction of the class.
    pub recall: f64,
    /// Harmonic mean.
    pub f1: f64,
    /// Mean position error of matched samples, m.
    pub mean_error_m: f64,
    /// 95th percentile position error, m.
    pub p95_error_m: f64,
    /// Mean |Δz| of matched samples, m.
    pub mean_height_error_m: f64,
}

impl ClassScore {
    /// `P R F1 err-mean err-p95 dz` (errors in cm), for tables.
    pub fn summary(&self) -> String {
        format!(
            "P {:.3} R {:.3} F1 {:.3}  err mean {:.1} cm p95 {:.1} cm  dz {:.1} cm",
            self.precision,
            self.recall,
            self.f1,
            100.0 * self.mean_error_m,
            100.0 * self.p95_error_m,
            100.0 * self.mean_height_error_m
        )
    }
}

/// Topology scores.
#[derive(Debug, Clone, Serialize)]
pub struct TopologyScore {
    /// Predicted lanes matched to a ground-truth lane.
    pub matched_lanes: usize,
    /// Predicted lanes.
    pub predicted_lanes: usize,
    /// Ground-truth lanes.
    pub truth_lanes: usize,
    /// Successor edges: precision, recall, F1.
    pub successor: [f64; 3],
    /// Neighbour edges: precision, recall, F1.
    pub neighbour: [f64; 3],
}

/// All layout scores.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutReport {
    /// Per class.
    pub classes: Vec<ClassScore>,
    /// Lane topology.
    pub topology: TopologyScore,
}

type Line3 = Vec<[f64; 3]>;

fn sample(line: &[[f64; 3]], step: f64, closed: bool) -> Vec<[f64; 3]> {
    let mut pts: Vec<[f64; 3]> = line.to_vec();
    if closed && let Some(f) = pts.first().copied() {
        pts.push(f);
    }
    let mut out = Vec::new();
    for w in pts.windows(2) {
        let d = ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt();
        let n = (d / step).ceil().max(1.0) as usize;
        for k in 0..n {
            let u = k as f64 / n as f64;
            out.push([
                w[0][0] + (w[1][0] - w[0][0]) * u,
                w[0][1] + (w[1][1] - w[0][1]) * u,
                w[0][2] + (w[1][2] - w[0][2]) * u,
            ]);
        }
    }
    if let Some(l) = pts.last() {
        out.push(*l);
    }
    out
}

/// Distance (2D) from p to a polyline and the z there.
fn nearest(p: [f64; 3], line: &[[f64; 3]]) -> (f64, f64) {
    let mut best = (f64::INFINITY, 0.0);
    for w in line.windows(2) {
        let (a, b) = (w[0], w[1]);
        let d = [b[0] - a[0], b[1] - a[1]];
        let l2 = (d[0] * d[0] + d[1] * d[1]).max(1e-18);
        let u = (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / l2).clamp(0.0, 1.0);
        let q = [a[0] + d[0] * u, a[1] + d[1] * u];
        let dist = (p[0] - q[0]).hypot(p[1] - q[1]);
        if dist < best.0 {
            best = (dist, a[2] + (b[2] - a[2]) * u);
        }
    }
    best
}

/// A spatial hash of polylines for distance queries.
struct Index {
    lines: Vec<Line3>,
    cell: f64,
    grid: HashMap<(i64, i64), Vec<usize>>,
}

impl Index {
    fn new(lines: Vec<Line3>, cell: f64, reach: f64) -> Self {
        let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for (i, l) in lines.iter().enumerate() {
            let mut keys = HashSet::new();
            for p in sample(l, cell / 2.0, false) {
                let (cx, cy) = ((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64);
                let r = (reach / cell).ceil() as i64;
                for dx in -r..=r {
                    for dy in -r..=r {
                        keys.insert((cx + dx, cy + dy));
                    }
                }
            }
            for k in keys {
                grid.entry(k).or_default().push(i);
            }
        }
        Self { lines, cell, grid }
    }

    fn nearest(&self, p: [f64; 3]) -> Option<(f64, f64)> {
        let key = ((p[0] / self.cell).floor() as i64, (p[1] / self.cell).floor() as i64);
        self.grid.get(&key)?.iter().map(|&i| nearest(p, &self.lines[i])).min_by(|a, b| a.0.total_cmp(&b.0))
    }
}

fn class_of_boundary(t: LineType) -> Option<&'static str> {
    match t {
        LineType::Solid => Some("solid_line"),
        LineType::Dashed => Some("dashed_line"),
        LineType::DoubleSolid | LineType::DoubleDashed | LineType::DashedSolid | LineType::SolidDashed => {
            Some("double_line")
        }
        LineType::Virtual => None,
    }
}

fn elements(l: &RoadLayout, offset: [f64; 2]) -> BTreeMap<String, Vec<(Line3, bool)>> {
    let mut m: BTreeMap<String, Vec<(Line3, bool)>> = BTreeMap::new();
    let conv = |pts: &[hdmap_core::nalgebra::Point3<f64>]| -> Line3 {
        pts.iter().map(|p| [p.x + offset[0], p.y + offset[1], p.z]).collect()
    };
    for b in &l.lane_boundaries {
        if let Some(c) = class_of_boundary(b.line_type) {
            m.entry(c.into()).or_default().push((conv(&b.points), false));
        }
    }
    for s in &l.stop_lines {
        m.entry("stop_line".into()).or_default().push((conv(&s.points), false));
    }
    for c in &l.crosswalks {
        m.entry("crosswalk".into()).or_default().push((conv(&c.polygon), true));
    }
    for s in &l.surface_marks {
        let name = match &s.kind {
            MarkKind::Arrow(k) => format!("arrow_{}", k.name()),
            _ => "other_mark".into(),
        };
        m.entry(name).or_default().push((conv(&s.polygon), true));
    }
    m
}

/// The elements as polylines, polygons closed (first vertex repeated).
fn closed_rings(elements: &[(Line3, bool)]) -> Vec<Line3> {
    elements
        .iter()
        .map(|(line, closed)| {
            let mut v = line.clone();
            if *closed && let Some(first) = v.first().copied() {
                v.push(first);
            }
            v
        })
        .collect()
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Scores `pred` against `truth`. `offset` is added to predicted coordinates first (e.g. to
/// undo a known georeferencing error of the source imagery). Arrows of all kinds are also
/// scored together as `arrow` (kind must match).
pub fn evaluate(pred: &RoadLayout, truth: &RoadLayout, tolerance_m: f64, offset: [f64; 2]) -> LayoutReport {
    let p = elements(pred, offset);
    let t = elements(truth, [0.0, 0.0]);
    let mut classes = Vec::new();
    let names: std::collections::BTreeSet<String> = p.keys().chain(t.keys()).cloned().collect();
    let mut arrow_acc = (0usize, 0usize, 0usize, 0usize, 0usize, 0usize, Vec::new(), Vec::new());
    for name in names {
        let pe = p.get(&name).cloned().unwrap_or_default();
        let te = t.get(&name).cloned().unwrap_or_default();
        let ti = Index::new(closed_rings(&te), 2.0, tolerance_m.max(0.5));
        let pi = Index::new(closed_rings(&pe), 2.0, tolerance_m.max(0.5));
        let (mut tp_p, mut n_p, mut tp_t, mut n_t) = (0usize, 0usize, 0usize, 0usize);
        let mut errs = Vec::new();
        let mut herrs = Vec::new();
        for (line, closed) in &pe {
            for s in sample(line, 0.25, *closed) {
                n_p += 1;
                if let Some((d, z)) = ti.nearest(s)
                    && d <= tolerance_m
                {
                    tp_p += 1;
                    errs.push(d);
                    herrs.push((s[2] - z).abs());
                }
            }
        }
        for (line, closed) in &te {
            for s in sample(line, 0.25, *closed) {
                n_t += 1;
                if pi.nearest(s).is_some_and(|(d, _)| d <= tolerance_m) {
                    tp_t += 1;
                }
            }
        }
        if name.starts_with("arrow_") {
            arrow_acc.0 += tp_p;
            arrow_acc.1 += n_p;
            arrow_acc.2 += tp_t;
            arrow_acc.3 += n_t;
            arrow_acc.4 += pe.len();
            arrow_acc.5 += te.len();
            arrow_acc.6.extend(errs.iter().copied());
            arrow_acc.7.extend(herrs.iter().copied());
        }
        classes.push(score(name, pe.len(), te.len(), tp_p, n_p, tp_t, n_t, errs, herrs));
    }
    let (a0, a1, a2, a3, a4, a5, errs, herrs) = arrow_acc;
    if a1 + a3 > 0 {
        classes.push(score("arrow".into(), a4, a5, a0, a1, a2, a3, errs, herrs));
    }
    LayoutReport { classes, topology: topology(pred, truth, offset) }
}

#[allow(clippy::too_many_arguments)]
fn score(
    class: String,
    predicted: usize,
    truth: usize,
    tp_p: usize,
    n_p: usize,
    tp_t: usize,
    n_t: usize,
    mut errs: Vec<f64>,
    herrs: Vec<f64>,
) -> ClassScore {
    let precision = if n_p == 0 { 0.0 } else { tp_p as f64 / n_p as f64 };
    let recall = if n_t == 0 { 0.0 } else { tp_t as f64 / n_t as f64 };
    let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
    let mean_error_m = if errs.is_empty() { f64::NAN } else { errs.iter().sum::<f64>() / errs.len() as f64 };
    let p95_error_m = percentile(&mut errs, 0.95);
    let mean_height_error_m =
        if herrs.is_empty() { f64::NAN } else { herrs.iter().sum::<f64>() / herrs.len() as f64 };
    ClassScore {
        class,
        predicted,
        truth,
        precision,
        recall,
        f1,
        mean_error_m,
        p95_error_m,
        mean_height_error_m,
    }
}

fn topology(pred: &RoadLayout, truth: &RoadLayout, offset: [f64; 2]) -> TopologyScore {
    // Match each predicted lane to the ground-truth lane covering most of its centre line.
    let tl: Vec<(ElementId, Line3)> =
        truth.lanes.iter().map(|l| (l.id, l.center_line.iter().map(|p| [p.x, p.y, p.z]).collect())).collect();
    let mut m: HashMap<ElementId, ElementId> = HashMap::new();
    for l in &pred.lanes {
        let pts: Line3 = l.center_line.iter().map(|p| [p.x + offset[0], p.y + offset[1], p.z]).collect();
        let samples = sample(&pts, 0.5, false);
        let mut votes: HashMap<ElementId, usize> = HashMap::new();
        for s in &samples {
            if let Some((id, d)) =
                tl.iter().map(|(id, line)| (*id, nearest(*s, line).0)).min_by(|a, b| a.1.total_cmp(&b.1))
                && d < 0.6
            {
                *votes.entry(id).or_default() += 1;
            }
        }
        if let Some((id, n)) = votes.into_iter().max_by_key(|(id, n)| (*n, std::cmp::Reverse(id.0)))
            && n * 2 >= samples.len()
        {
            m.insert(l.id, id);
        }
    }
    let edges = |l: &RoadLayout,
                 f: &dyn Fn(&hdmap_core::Lane) -> Vec<ElementId>|
     -> HashSet<(ElementId, ElementId)> {
        l.lanes.iter().flat_map(|a| f(a).into_iter().map(move |b| (a.id, b))).collect()
    };
    let succ = |a: &hdmap_core::Lane| a.successors.clone();
    let neigh =
        |a: &hdmap_core::Lane| a.left_neighbour.into_iter().chain(a.right_neighbour).collect::<Vec<_>>();
    let f1 = |pe: HashSet<(ElementId, ElementId)>, te: HashSet<(ElementId, ElementId)>| -> [f64; 3] {
        // A ground-truth lane found as several consecutive pieces: the links between its pieces
        // are neither right nor wrong (the pieces together are the lane).
        let pe: HashSet<(ElementId, ElementId)> = pe
            .into_iter()
            .filter(|(a, b)| !matches!((m.get(a), m.get(b)), (Some(x), Some(y)) if x == y))
            .collect();
        let mapped: HashSet<(ElementId, ElementId)> =
            pe.iter().filter_map(|(a, b)| Some((*m.get(a)?, *m.get(b)?))).collect();
        let correct = pe
            .iter()
            .filter(|(a, b)| matches!((m.get(a), m.get(b)), (Some(x), Some(y)) if te.contains(&(*x, *y))))
            .count();
        let found = te.iter().filter(|e| mapped.contains(e)).count();
        let p = if pe.is_empty() { 0.0 } else { correct as f64 / pe.len() as f64 };
        let r = if te.is_empty() { 0.0 } else { found as f64 / te.len() as f64 };
        [p, r, if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }]
    };
    TopologyScore {
        matched_lanes: m.len(),
        predicted_lanes: pred.lanes.len(),
        truth_lanes: truth.lanes.len(),
        successor: f1(edges(pred, &succ), edges(truth, &succ)),
        neighbour: f1(edges(pred, &neigh), edges(truth, &neigh)),
    }
}

/// Agreement of two sets of polylines (e.g. road centre lines against a road-graph ground
/// truth): both are sampled every 0.5 m; precision is the share of predicted length within
/// `tolerance_m` of the truth, recall the share of truth length within `tolerance_m` of the
/// prediction.
#[derive(Debug, Clone, Serialize)]
pub struct PolylineAgreement {
    /// Predicted length near the truth / predicted length.
    pub precision: f64,
    /// Truth length near the prediction / truth length.
    pub recall: f64,
    /// Harmonic mean.
    pub f1: f64,
    /// Predicted length, m.
    pub predicted_m: f64,
    /// Truth length, m.
    pub truth_m: f64,
}

/// See [`PolylineAgreement`].
pub fn polyline_agreement(
    pred: &[Vec<[f64; 2]>],
    truth: &[Vec<[f64; 2]>],
    tolerance_m: f64,
) -> PolylineAgreement {
    let lift = |v: &[Vec<[f64; 2]>]| -> Vec<Line3> {
        v.iter().filter(|l| l.len() >= 2).map(|l| l.iter().map(|p| [p[0], p[1], 0.0]).collect()).collect()
    };
    let (p, t) = (lift(pred), lift(truth));
    let (pi, ti) = (Index::new(p.clone(), 8.0, tolerance_m), Index::new(t.clone(), 8.0, tolerance_m));
    let share = |lines: &[Line3], other: &Index| -> (f64, f64) {
        let (mut near, mut all) = (0usize, 0usize);
        for l in lines {
            for s in sample(l, 0.5, false) {
                all += 1;
                if other.nearest(s).is_some_and(|(d, _)| d <= tolerance_m) {
                    near += 1;
                }
            }
        }
        (if all == 0 { 0.0 } else { near as f64 / all as f64 }, all as f64 * 0.5)
    };
    let (precision, predicted_m) = share(&p, &ti);
    let (recall, truth_m) = share(&t, &pi);
    let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
    PolylineAgreement { precision, recall, f1, predicted_m, truth_m }
}
