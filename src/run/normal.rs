//! The standard normal distribution, for the paired gate's intervals and
//! its sequential boundaries: the distribution function (Φ), its inverse,
//! and the two-sided critical value of a confidence level. Written out here
//! (a few lines each) rather than taken from a statistics crate for two
//! functions.

/// Φ(x), the standard normal distribution function, from [`upper_tail`].
pub fn cdf(x: f64) -> f64 {
    1.0 - upper_tail(x)
}

/// 1 − Φ(x), with a small *relative* error (below 1.2e-7, Numerical
/// Recipes' Chebyshev fit of erfc) also far in the tail, where the
/// sequential boundaries spend 1e-20 of α at an early look.
pub fn upper_tail(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        0.5 * erfc
    } else {
        1.0 - 0.5 * erfc
    }
}

/// Φ⁻¹(p) for p in (0, 1) (Acklam's rational approximation, relative error
/// below 1.2e-9); ±infinity at the ends.
pub fn quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const LOW: f64 = 0.024_25;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The z of a two-sided interval at `level` (0.95 → 1.96); `level` is
/// clamped to [0.5, 1 - 1e-12].
pub fn z_two_sided(level: f64) -> f64 {
    let alpha = (1.0 - level).clamp(1e-12, 0.5);
    -quantile(alpha / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((z_two_sided(0.95) - 1.959_964).abs() < 1e-5);
        assert!((quantile(0.999) - 3.090_232).abs() < 1e-5);
        assert!((quantile(1e-6) + 4.753_424).abs() < 1e-5);
        assert!((cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((cdf(-1.0) - 0.158_655).abs() < 1e-6);
        // Relative accuracy far in the tail: 1 - Φ(8) = 6.22e-16.
        assert!((upper_tail(8.0) / 6.220_960_574e-16 - 1.0).abs() < 1e-5);
    }

    #[test]
    fn quantile_inverts_cdf() {
        for i in 1..200 {
            let p = f64::from(i) / 200.0;
            assert!((cdf(quantile(p)) - p).abs() < 1e-6, "{p}");
        }
    }
}
