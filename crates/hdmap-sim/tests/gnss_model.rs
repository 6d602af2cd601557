//! The GNSS/INS error model reproduces the statistics it is configured with, on long synthetic
//! runs: open-sky Gauss–Markov bias, urban-canyon drift, quadratic drift during outages.

use hdmap_core::SemanticClass;
use hdmap_core::nalgebra::{Isometry3, Vector3};
use hdmap_sim::drive::ins_solution;
use hdmap_sim::scene::{Object, Shape};

fn straight(n: usize, dt: f64) -> (Vec<f64>, Vec<Isometry3<f64>>) {
    // 10 m/s eastwards; INS body y (forward) points east: yaw of the body frame = −90° about z.
    let times: Vec<f64> = (0..n).map(|i| i as f64 * dt).collect();
    let poses = times
        .iter()
        .map(|t| {
            Isometry3::new(
                Vector3::new(10.0 * t, 0.0, 1.6),
                Vector3::new(0.0, 0.0, -std::f64::consts::FRAC_PI_2),
            )
        })
        .collect();
    (times, poses)
}

fn std_of(v: &[f64]) -> f64 {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
}

fn config() -> hdmap_sim::SimConfig {
    hdmap_sim::load_config(&hdmap_io::testdata::repo_root().join("configs/sim/demo.toml"))
        .expect("demo config")
}

#[test]
fn open_sky_error_is_the_configured_gauss_markov_bias() {
    let mut cfg = config();
    cfg.gnss.outages.clear();
    let dt = 0.1;
    let (times, poses) = straight(72_000, dt); // two hours at 10 Hz
    let ins = ins_solution(&cfg, &times, &poses, &[]);
    let sigma = cfg.gnss.open_sky_std_m;
    let tau = cfg.gnss.open_sky_tau_s;
    for axis in 0..3 {
        let e: Vec<f64> = ins.position_error.iter().map(|e| e[axis]).collect();
        let want = if axis < 2 { sigma[0] } else { sigma[1] };
        let got = std_of(&e);
        assert!((got / want - 1.0).abs() < 0.25, "axis {axis}: std {got:.4} m, configured {want:.4} m");
        // Innovations of an AR(1) with φ = exp(−dt/τ) have std σ·√(1−φ²).
        let phi = (-dt / tau).exp();
        let innov: Vec<f64> = e.windows(2).map(|w| w[1] - phi * w[0]).collect();
        let expect = want * (1.0 - phi * phi).sqrt();
        assert!(
            (std_of(&innov) / expect - 1.0).abs() < 0.05,
            "axis {axis}: innovation std {:.5} vs {expect:.5}",
            std_of(&innov)
        );
        // Correlation time: autocorrelation at lag τ ≈ e^−1.
        let lag = (tau / dt) as usize;
        let m = e.iter().sum::<f64>() / e.len() as f64;
        let c0: f64 = e.iter().map(|x| (x - m) * (x - m)).sum();
        let cl: f64 = e.iter().zip(&e[lag..]).map(|(a, b)| (a - m) * (b - m)).sum();
        let rho = cl / c0;
        assert!((rho - (-1f64).exp()).abs() < 0.2, "axis {axis}: autocorrelation at τ {rho:.3}");
        assert!(ins.position_std.iter().all(|s| (s[axis] - want).abs() < 1e-12));
    }
}

#[test]
fn urban_canyon_adds_smooth_metre_level_drift() {
    let mut cfg = config();
    cfg.gnss.outages.clear();
    let dt = 0.1;
    let (times, poses) = straight(36_000, dt); // one hour, 36 km
    // Two 60 m walls 15 m either side of the road: building elevation 76°, a full canyon.
    let wall = |y: f64| Object {
        shape: Shape::Box { center: [18_000.0, y], yaw: 0.0, half: [18_100.0, 5.0], z: [0.0, 60.0] },
        class: SemanticClass::Building,
        instance: 1,
        reflectivity: 0.3,
        color: [0, 0, 0],
        porosity: 0.0,
    };
    let ins = ins_solution(&cfg, &times, &poses, &[wall(20.0), wall(-20.0)]);
    assert!(ins.canyon.iter().all(|c| (*c - 1.0).abs() < 1e-9));
    let (o, c) = (cfg.gnss.open_sky_std_m[0], cfg.gnss.canyon_std_m[0]);
    let want = (o * o + c * c).sqrt();
    for axis in 0..2 {
        let e: Vec<f64> = ins.position_error.iter().map(|e| e[axis]).collect();
        let got = std_of(&e);
        assert!((got / want - 1.0).abs() < 0.2, "axis {axis}: canyon std {got:.3} m, model {want:.3} m");
        // Smooth like a filtered solution: velocity error stays below 1 m/s.
        let mut v: Vec<f64> = e.windows(2).map(|w| ((w[1] - w[0]) / dt).abs()).collect();
        v.sort_by(f64::total_cmp);
        assert!(
            v[v.len() * 999 / 1000] < 1.0,
            "axis {axis}: 99.9 % velocity error {:.2} m/s",
            v[v.len() * 999 / 1000]
        );
    }
    let max = ins.position_error.iter().map(|e| e[0].hypot(e[1])).fold(0.0, f64::max);
    assert!(max > 2.0, "metre-level drift: largest {max:.2} m");
}

#[test]
fn outages_drift_quadratically_and_recover() {
    let mut cfg = config();
    cfg.gnss.outages = vec![[100.0, 20.0]];
    cfg.gnss.outage_accel_bias_mps2 = 0.2;
    let dt = 0.1;
    let (times, poses) = straight(3_000, dt);
    let ins = ins_solution(&cfg, &times, &poses, &[]);
    let at = |t: f64| ins.position_error[(t / dt).round() as usize];
    let h = |a: [f64; 3], b: [f64; 3]| (a[0] - b[0]).hypot(a[1] - b[1]);
    let e0 = at(100.0);
    let (d10, d20) = (h(at(110.0), e0), h(at(119.9), e0));
    assert!(d20 > 1.0, "a 20 s outage with 0.2 m/s² bias drifts metres: {d20:.2} m");
    assert!((d20 / d10 - 3.96).abs() < 0.4, "drift grows with τ²: ratio {:.2}", d20 / d10);
    assert!(ins.in_outage[(110.0 / dt) as usize] && !ins.in_outage[(125.0 / dt) as usize]);
    // After the outage the solution converges back within a few correlation times.
    let late = h(at(290.0), [0.0; 3]);
    assert!(late < 0.3, "error 170 s after the outage {late:.2} m");
    // Reported std grows with the drift.
    assert!(ins.position_std[(119.0 / dt) as usize][0] > 1.0);
}
