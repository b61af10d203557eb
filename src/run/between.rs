//! The between-client part of a paired interval's variance, estimated by the
//! method of moments and pooled across the run's queries (a random-effects
//! estimate, as DerSimonian & Laird pool studies: "Meta-analysis in clinical
//! trials", Controlled Clinical Trials 7:177–188, 1986).
//!
//! Why: a connection's backend may be a little faster or slower on one side
//! for the whole run, so clients add variance the per-interval blocks do not
//! show. Resampling clients (a two-stage bootstrap) estimates it from the
//! spread of the clients' own ratios, which also holds their within-client
//! noise: counted twice, and with 2 clients the estimate rests on one
//! difference per query. Here each query gives, per client, its log ratio and
//! the within-client variance of it (from the stratified bootstrap); the
//! spread of the client ratios beyond what that noise explains is the
//! client component, and every query of the run estimates the same one
//! (it belongs to the connections), so they are pooled.

/// One client's log ratio at a quantile and the within-client (bootstrap)
/// variance of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientLog {
    /// ln(candidate / baseline) of the client's own pairs.
    pub log: f64,
    /// Its variance from resampling the client's blocks.
    pub var: f64,
}

/// One query's moment estimate: the spread of its clients' log ratios
/// beyond their within-client noise, per degree of freedom, with the
/// weight it gets in the pool.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Moment {
    /// (S − (1 − 1/k)·Σ vᵢ) / (k − 1): unbiased for the client variance τ².
    tau2: f64,
    /// k − 1.
    df: f64,
    /// Mean within-client variance (sets how noisy `tau2` is).
    noise: f64,
}

/// The moment estimate of one query's clients (`None` with fewer than two
/// usable clients). E Σ(lᵢ − l̄)² = (k − 1)τ² + (1 − 1/k)Σ vᵢ for independent
/// clients with variances τ² + vᵢ.
fn moment(clients: &[ClientLog]) -> Option<Moment> {
    let usable: Vec<&ClientLog> = clients
        .iter()
        .filter(|c| c.log.is_finite() && c.var.is_finite())
        .collect();
    let k = usable.len() as f64;
    if usable.len() < 2 {
        return None;
    }
    let mean = usable.iter().map(|c| c.log).sum::<f64>() / k;
    let spread: f64 = usable.iter().map(|c| (c.log - mean).powi(2)).sum();
    let within: f64 = usable.iter().map(|c| c.var).sum();
    Some(Moment {
        tau2: (spread - (1.0 - 1.0 / k) * within) / (k - 1.0),
        df: k - 1.0,
        noise: within / k,
    })
}

/// The client variance τ² of the log ratio, pooled over `queries` (each the
/// client logs of one query at one quantile): each query's moment estimate
/// weighted by its inverse variance, df / (τ² + v̄)² (iterated twice from
/// τ² = 0, as DerSimonian–Laird's weights are), then floored at 0. 0 when no
/// query has two usable clients (one client shows no client spread).
pub fn pooled<'a>(queries: impl IntoIterator<Item = &'a [ClientLog]>) -> f64 {
    let moments: Vec<Moment> = queries.into_iter().filter_map(moment).collect();
    let mut tau2 = 0.0;
    for _ in 0..2 {
        let (mut sum, mut weights) = (0.0, 0.0);
        for m in &moments {
            let w = m.df / (tau2 + m.noise).powi(2).max(1e-12);
            sum += w * m.tau2;
            weights += w;
        }
        tau2 = if weights > 0.0 {
            (sum / weights).max(0.0)
        } else {
            0.0
        };
    }
    tau2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(log: f64, var: f64) -> ClientLog {
        ClientLog { log, var }
    }

    #[test]
    fn spread_explained_by_noise_gives_zero() {
        // Two clients 0.1 apart, each with variance 0.01: (0.005 − 0.01)/1 < 0.
        assert_eq!(pooled([&[c(0.0, 0.01), c(0.1, 0.01)][..]]), 0.0);
    }

    #[test]
    fn spread_beyond_noise_is_the_client_variance() {
        // Spread 0.5 over 1 df, within 0.5·(1e-4 + 1e-4): τ² ≈ 0.5 − 1e-4.
        let t = pooled([&[c(0.0, 1e-4), c(1.0, 1e-4)][..]]);
        assert!((t - (0.5 - 1e-4)).abs() < 1e-9, "{t}");
    }

    #[test]
    fn one_client_or_none_gives_zero_and_nan_clients_are_left_out() {
        assert_eq!(pooled([&[c(0.3, 0.01)][..]]), 0.0);
        assert_eq!(pooled(std::iter::empty::<&[ClientLog]>()), 0.0);
        let t = pooled([&[c(0.0, 0.0), c(f64::NAN, 0.0), c(0.2, 0.0)][..]]);
        assert!((t - 0.02).abs() < 1e-12, "{t}");
    }

    #[test]
    fn noisy_queries_weigh_less_in_the_pool() {
        // A precise query showing τ² ≈ 0.02 and a noisy one showing 0.5:
        // the pool stays near the precise one.
        let precise = [c(0.0, 1e-4), c(0.2, 1e-4)];
        let noisy = [c(0.0, 0.5), c(1.5, 0.5)];
        let t = pooled([&precise[..], &noisy[..]]);
        assert!(t > 0.015 && t < 0.05, "{t}");
    }
}
