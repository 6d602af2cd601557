//! The MMS drive: a route through the lane graph, true vehicle poses at 100+ Hz, and the
//! GNSS/INS solution with a realistic error model.

use hdmap_core::SemanticClass;
use hdmap_core::nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

use crate::SimError;
use crate::config::{Move, SimConfig};
use crate::geom::{self, P2, add, dir, left, norm, sub};
use crate::network::{LaneKey, RoadEnd, RoadMap};
use crate::noise;
use crate::scene::{Object, Shape};
use crate::terrain::Terrain;

/// The drive path (local metres, 0.25 m spacing) and the moves taken.
#[derive(Debug, Clone)]
pub struct Route {
    /// Path points.
    pub path: Vec<P2>,
}

fn lane_change_offset(u: f64, len: f64, t_in: f64, t_out: f64) -> f64 {
    if (t_in - t_out).abs() < 1e-9 {
        return t_in;
    }
    let span = (len * 0.6).min(45.0);
    let x = ((u - (len - span) / 2.0) / span).clamp(0.0, 1.0);
    t_in + (t_out - t_in) * x * x * (3.0 - 2.0 * x)
}

/// Builds the route of the config's drive.
pub fn build_route(cfg: &SimConfig, map: &RoadMap) -> Result<Route, SimError> {
    let d = &cfg.drive;
    let mut road = map
        .roads
        .iter()
        .position(|r| r.name == d.start_road)
        .ok_or_else(|| SimError::Config(format!("drive.start_road `{}` is not a road", d.start_road)))?;
    let mut forward = !d.start_inbound;
    let n0 = map.roads[road].lanes;
    let mut k = n0 - 1;
    let (a, b) = map.lane_range(road);
    let len0 = map.roads[road].line.length();
    // Entry progress along the travel direction.
    let mut s_entry = if forward {
        a
    } else if map.roads[road].end == RoadEnd::DeadEnd {
        len0 - 2.0
    } else {
        b
    };
    let mut path: Vec<P2> = Vec::new();
    let mut moves = d.moves.iter().copied().peekable();
    loop {
        let r = &map.roads[road];
        let n = r.lanes;
        let (a, b) = map.lane_range(road);
        let len = r.line.length();
        let next = moves.next();
        // Where this traversal ends and in which lane.
        let heading_to_dead_end =
            (forward && r.end == RoadEnd::DeadEnd) || (!forward && r.start == RoadEnd::DeadEnd);
        let s_exit = if forward {
            if r.end == RoadEnd::DeadEnd { len - 2.0 } else { b }
        } else if r.start == RoadEnd::DeadEnd {
            2.0
        } else {
            a
        };
        let k_out = match next {
            Some(Move::Left) => 0,
            Some(Move::Right) | Some(Move::Uturn) => n - 1,
            Some(Move::Straight) => {
                if n >= 2 {
                    k.max(1)
                } else {
                    0
                }
            }
            None => k,
        };
        let t_in = map.lane_t(forward, k);
        let t_out = map.lane_t(forward, k_out);
        let trav = (s_exit - s_entry).abs();
        let steps = (trav / 0.5).ceil().max(1.0) as usize;
        for i in 0..=steps {
            let u = trav * i as f64 / steps as f64;
            let s = if forward { s_entry + u } else { s_entry - u };
            path.push(r.line.at(s, lane_change_offset(u, trav, t_in, t_out)));
        }
        let Some(mv) = next else { break };
        if heading_to_dead_end {
            if mv != Move::Uturn {
                return Err(SimError::Config(format!(
                    "drive move {mv:?} at the dead end of road `{}`: only uturn",
                    r.name
                )));
            }
            // Around the cul-de-sac on a circle through both outer lane centres.
            if !map.bulbs.iter().any(|x| x.road == road) {
                return Err(SimError::Config(format!("road `{}` has no cul-de-sac to turn in", r.name)));
            }
            let (p_end, h_end) = r.line.pose(s_exit);
            let start = add(p_end, left(h_end), t_out);
            let end = add(p_end, left(h_end), -t_out);
            let center = [(start[0] + end[0]) / 2.0, (start[1] + end[1]) / 2.0];
            let radius = norm(sub(start, center));
            let a0 = {
                let v = sub(start, center);
                v[1].atan2(v[0])
            };
            // Turn left (counter-clockwise) through the far side of the bulb.
            let steps = (std::f64::consts::PI * radius / 0.5).ceil() as usize;
            for i in 1..steps {
                path.push(add(center, dir(a0 + std::f64::consts::PI * i as f64 / steps as f64), radius));
            }
            forward = !forward;
            k = n - 1;
            s_entry = s_exit;
            continue;
        }
        if mv == Move::Uturn {
            return Err(SimError::Config(format!("drive move uturn at a junction on road `{}`", r.name)));
        }
        let from = LaneKey { road, forward, k: k_out };
        let c = map.connectors.iter().find(|c| c.from == from && c.turn == mv).ok_or_else(|| {
            SimError::Config(format!("drive move {mv:?} not possible from road `{}` lane {k_out}", r.name))
        })?;
        path.extend(c.path[1..c.path.len() - 1].iter().copied());
        road = c.to.road;
        forward = c.to.forward;
        k = c.to.k;
        let (a2, b2) = map.lane_range(road);
        s_entry = if forward { a2 } else { b2 };
    }
    // Resample at 0.25 m and smooth (moving average over ±1 m, twice) to round joins.
    let mut pts = resample(&path, 0.25);
    for _ in 0..2 {
        let src = pts.clone();
        let n = src.len();
        for (i, p) in pts.iter_mut().enumerate().take(n.saturating_sub(4)).skip(4) {
            let mut acc = [0.0, 0.0];
            for q in &src[i - 4..=i + 4] {
                acc = add(acc, *q, 1.0 / 9.0);
            }
            *p = acc;
        }
    }
    Ok(Route { path: resample(&pts, 0.25) })
}

fn resample(path: &[P2], step: f64) -> Vec<P2> {
    let mut out = vec![path[0]];
    let mut carry = 0.0;
    for w in path.windows(2) {
        let seg = norm(sub(w[1], w[0]));
        if seg < 1e-9 {
            continue;
        }
        let mut u = step - carry;
        while u <= seg {
            out.push(add(w[0], sub(w[1], w[0]), u / seg));
            u += step;
        }
        carry = seg - (u - step);
    }
    out
}

/// True poses sampled at the pose rate, local frame: `(time_s, world_from_vehicle)`.
pub struct TruePoses {
    /// Seconds from the drive start.
    pub times: Vec<f64>,
    /// `world_from_vehicle` in local metres.
    pub poses: Vec<Isometry3<f64>>,
}

/// Speed profile and pose sampling along the route.
pub fn true_poses(cfg: &SimConfig, route: &Route, terrain: &Terrain) -> TruePoses {
    let d = &cfg.drive;
    let p = &route.path;
    let n = p.len();
    let ds = 0.25;
    let heading: Vec<f64> = (0..n)
        .map(|i| {
            let v = sub(p[(i + 1).min(n - 1)], p[i.saturating_sub(1)]);
            v[1].atan2(v[0])
        })
        .collect();
    let mut kappa = vec![0.0; n];
    for i in 4..n.saturating_sub(4) {
        let mut dh = heading[i + 4] - heading[i - 4];
        dh = (dh + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
        kappa[i] = dh / (8.0 * ds);
    }
    let mut v: Vec<f64> =
        kappa.iter().map(|k| d.speed_mps.min((d.lateral_accel_mps2 / k.abs().max(1e-9)).sqrt())).collect();
    v[0] = 0.3;
    v[n - 1] = 0.3;
    for i in 1..n {
        v[i] = v[i].min((v[i - 1] * v[i - 1] + 2.0 * 1.0 * ds).sqrt());
    }
    for i in (0..n - 1).rev() {
        v[i] = v[i].min((v[i + 1] * v[i + 1] + 2.0 * 1.5 * ds).sqrt());
    }
    let mut t_at = vec![0.0; n];
    for i in 1..n {
        t_at[i] = t_at[i - 1] + ds / (0.5 * (v[i] + v[i - 1])).max(0.3);
    }
    let total = if d.max_duration_s > 0.0 { t_at[n - 1].min(d.max_duration_s) } else { t_at[n - 1] };
    let count = (total * d.pose_rate_hz).floor() as usize + 1;
    let phase = noise::unit(noise::hash(cfg.drive_seed(), "wander", &[])) * std::f64::consts::TAU;
    let mut times = Vec::with_capacity(count);
    let mut poses = Vec::with_capacity(count);
    let mut j = 0;
    for k in 0..count {
        let t = k as f64 / d.pose_rate_hz;
        while j + 2 < n && t_at[j + 1] < t {
            j += 1;
        }
        let u = ((t - t_at[j]) / (t_at[j + 1] - t_at[j]).max(1e-9)).clamp(0.0, 1.0);
        let s = (j as f64 + u) * ds;
        let base = add(p[j], sub(p[j + 1], p[j]), u);
        let mut h0 = heading[j + 1] - heading[j];
        h0 = (h0 + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
        let h = heading[j] + u * h0;
        // A driver wanders a little inside the lane.
        let wander = 0.12 * (std::f64::consts::TAU * s / 85.0 + phase).sin();
        let xy = add(base, left(h), wander);
        let g = terrain.gradient(xy[0], xy[1]);
        let along = g[0] * h.cos() + g[1] * h.sin();
        let across = g[0] * (-h.sin()) + g[1] * h.cos();
        let pitch = -along.atan();
        let roll = across.atan();
        let rot = UnitQuaternion::from_axis_angle(&Vector3::z_axis(), h)
            * UnitQuaternion::from_axis_angle(&Vector3::y_axis(), pitch)
            * UnitQuaternion::from_axis_angle(&Vector3::x_axis(), roll);
        let z = terrain.height(xy[0], xy[1]);
        times.push(t);
        poses.push(Isometry3::from_parts(Translation3::new(xy[0], xy[1], z), rot));
    }
    TruePoses { times, poses }
}

/// Urban-canyon factor (0 open sky – 1 deep canyon) at a position and heading: the mean of the
/// elevation angles of the nearest building to the left and to the right within 60 m.
pub fn canyon_factor(cfg: &SimConfig, buildings: &[Object], p: [f64; 3], heading: f64) -> f64 {
    let mut elev = [0.0f64; 2];
    for (k, side) in [1.0, -1.0].iter().enumerate() {
        let dvec = left(heading);
        let dvec = [dvec[0] * side, dvec[1] * side];
        for b in buildings {
            if b.class != SemanticClass::Building {
                continue;
            }
            if let Shape::Box { z, .. } = b.shape
                && let Some((t, _)) = b.shape.intersect([p[0], p[1], z[0] + 0.5], [dvec[0], dvec[1], 0.0])
                && t < 60.0
            {
                let e = ((z[1] - p[2]) / t).atan().to_degrees();
                elev[k] = elev[k].max(e);
            }
        }
    }
    let mean = 0.5 * (elev[0] + elev[1]);
    let [e0, e1] = cfg.gnss.canyon_elevation_deg;
    ((mean - e0) / (e1 - e0)).clamp(0.0, 1.0)
}

/// The INS solution: reported `world_from_gnss` poses (local frame) with errors, reported
/// std devs, and the true errors for tests.
pub struct InsSolution {
    /// Reported poses.
    pub poses: Vec<Isometry3<f64>>,
    /// Reported velocity (E, N, U), m/s.
    pub velocity: Vec<[f64; 3]>,
    /// Reported position std (E, N, U), m.
    pub position_std: Vec<[f64; 3]>,
    /// Reported attitude std (roll, pitch, yaw), rad.
    pub attitude_std: Vec<[f64; 3]>,
    /// True position error (E, N, U), m.
    pub position_error: Vec<[f64; 3]>,
    /// Canyon factor per epoch.
    pub canyon: Vec<f64>,
    /// True if inside an outage.
    pub in_outage: Vec<bool>,
}

/// Time constant of the low-pass that makes canyon drift smooth, s.
pub const SMOOTH_S: f64 = 3.0;

/// Simulates the INS solution for the true `world_from_gnss` poses.
pub fn ins_solution(
    cfg: &SimConfig,
    times: &[f64],
    world_from_gnss: &[Isometry3<f64>],
    buildings: &[Object],
) -> InsSolution {
    let g = &cfg.gnss;
    let n = times.len();
    let dt = if n > 1 { times[1] - times[0] } else { 0.01 };
    // Canyon factor at 1 Hz, linearly interpolated.
    let every = (1.0 / dt).round().max(1.0) as usize;
    let mut canyon_1hz = Vec::new();
    for i in (0..n).step_by(every) {
        let p = world_from_gnss[i].translation.vector;
        let fwd = world_from_gnss[i].rotation * Vector3::y();
        canyon_1hz.push(canyon_factor(cfg, buildings, [p.x, p.y, p.z], fwd.y.atan2(fwd.x)));
    }
    let canyon: Vec<f64> = (0..n)
        .map(|i| {
            let f = i as f64 / every as f64;
            let i0 = (f.floor() as usize).min(canyon_1hz.len() - 1);
            let i1 = (i0 + 1).min(canyon_1hz.len() - 1);
            canyon_1hz[i0] + (canyon_1hz[i1] - canyon_1hz[i0]) * (f - i0 as f64)
        })
        .collect();
    let phi_b = (-dt / g.open_sky_tau_s).exp();
    let phi_c = (-dt / g.canyon_tau_s).exp();
    // A GNSS/INS filter output is smooth: the canyon drift is a Gauss–Markov process passed
    // through a first-order low-pass (time constant SMOOTH_S); its driving noise is scaled so
    // the smoothed process keeps the configured stationary std.
    let alpha = dt / SMOOTH_S;
    let smooth_gain = ((g.canyon_tau_s + SMOOTH_S) / g.canyon_tau_s).sqrt();
    let phi_a = (-dt / 100.0).exp();
    let att_std = [
        g.attitude_std_deg[0].to_radians(),
        g.attitude_std_deg[0].to_radians(),
        g.attitude_std_deg[1].to_radians(),
    ];
    let sig = |axis: usize, v: [f64; 2]| if axis < 2 { v[0] } else { v[1] };
    let draw = |stream: &str, i: usize, axis: usize| {
        noise::normal(noise::hash(cfg.drive_seed(), stream, &[i as i64, axis as i64]))
    };
    let mut b = [0.0; 3];
    let mut c = [0.0; 3];
    let mut cs = [0.0; 3];
    // Variances the filter would report: propagated with the same recursions.
    let mut var_c = [0.0f64; 3];
    let mut post_var = [0.0f64; 3];
    let mut att = [0.0; 3];
    for axis in 0..3 {
        b[axis] = sig(axis, g.open_sky_std_m) * draw("gnss-b0", 0, axis);
        att[axis] = att_std[axis] * draw("att0", 0, axis);
    }
    // Outage drift: per outage a random accelerometer-bias direction.
    let mut outage_err = [0.0; 3];
    let mut outage_var = 0.0;
    let mut post_outage = [0.0; 3];
    let mut out = InsSolution {
        poses: Vec::with_capacity(n),
        velocity: Vec::with_capacity(n),
        position_std: Vec::with_capacity(n),
        attitude_std: Vec::with_capacity(n),
        position_error: Vec::with_capacity(n),
        canyon: canyon.clone(),
        in_outage: Vec::with_capacity(n),
    };
    for i in 0..n {
        let t = times[i];
        if i > 0 {
            for axis in 0..3 {
                b[axis] = phi_b * b[axis]
                    + sig(axis, g.open_sky_std_m) * (1.0 - phi_b * phi_b).sqrt() * draw("gnss-b", i, axis);
                c[axis] = phi_c * c[axis]
                    + smooth_gain
                        * sig(axis, g.canyon_std_m)
                        * canyon[i]
                        * (1.0 - phi_c * phi_c).sqrt()
                        * draw("gnss-c", i, axis);
                cs[axis] += (c[axis] - cs[axis]) * alpha;
                let q = smooth_gain * sig(axis, g.canyon_std_m) * canyon[i];
                var_c[axis] = phi_c * phi_c * var_c[axis] + q * q * (1.0 - phi_c * phi_c);
                post_var[axis] *= phi_c * phi_c;
                att[axis] =
                    phi_a * att[axis] + att_std[axis] * (1.0 - phi_a * phi_a).sqrt() * draw("att", i, axis);
                post_outage[axis] *= phi_c;
            }
        }
        let active = g.outages.iter().enumerate().find(|(_, o)| t >= o[0] && t < o[0] + o[1]);
        let mut extra_std = 0.0;
        match active {
            Some((oi, o)) => {
                let tau = t - o[0];
                for (axis, err) in outage_err.iter_mut().enumerate().take(2) {
                    let a = g.outage_accel_bias_mps2 * draw("outage", oi, axis);
                    *err = 0.5 * a * tau * tau;
                }
                extra_std = 0.5 * g.outage_accel_bias_mps2 * tau * tau;
                outage_var = extra_std * extra_std;
            }
            None => {
                if outage_err != [0.0; 3] {
                    // Leaving an outage: the solution converges back.
                    for axis in 0..3 {
                        post_outage[axis] += outage_err[axis];
                        post_var[axis] += outage_var;
                    }
                    outage_err = [0.0; 3];
                }
            }
        }
        let e: [f64; 3] =
            std::array::from_fn(|axis| b[axis] + cs[axis] + outage_err[axis] + post_outage[axis]);
        let truth = world_from_gnss[i];
        let rot_err = UnitQuaternion::from_euler_angles(att[0], att[1], att[2]);
        let reported = Isometry3::from_parts(
            Translation3::from(truth.translation.vector + Vector3::new(e[0], e[1], e[2])),
            rot_err * truth.rotation,
        );
        let std: [f64; 3] = std::array::from_fn(|axis| {
            let o = sig(axis, g.open_sky_std_m);
            (o * o + var_c[axis] / (smooth_gain * smooth_gain) + extra_std * extra_std + post_var[axis])
                .sqrt()
        });
        out.poses.push(reported);
        out.position_std.push(std);
        out.attitude_std.push(att_std);
        out.position_error.push(e);
        out.in_outage.push(active.is_some());
    }
    for i in 0..n {
        let a = out.poses[i.saturating_sub(1)].translation.vector;
        let b2 = out.poses[(i + 1).min(n - 1)].translation.vector;
        let span = times[(i + 1).min(n - 1)] - times[i.saturating_sub(1)];
        let v = (b2 - a) / span.max(1e-9);
        out.velocity.push([v.x, v.y, v.z]);
    }
    out
}

/// Horizontal distance along the route path, m.
pub fn route_length(route: &Route) -> f64 {
    route.path.windows(2).map(|w| geom::norm(sub(w[1], w[0]))).sum()
}
