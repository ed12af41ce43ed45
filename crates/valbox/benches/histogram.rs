//! Quantiles of a server histogram between two scrapes of `/metrics`:
//! what the benchmarks that measure through the server's own metrics
//! share.

/// The cumulative buckets of histogram `name` in a scrape: (upper bound,
/// count).
pub async fn buckets(metrics_url: &str, name: &str) -> Vec<(f64, u64)> {
    let text = reqwest::get(metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name}_bucket");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let count = l.rsplit(' ').next().unwrap().parse().unwrap();
            (le.parse().unwrap_or(f64::INFINITY), count)
        })
        .collect()
}

/// How many were observed between the scrapes `before` and `after`, and
/// the bucket bounds under which half and 99% of them fell.
pub fn between(before: &[(f64, u64)], after: &[(f64, u64)]) -> (u64, f64, f64) {
    let seen: Vec<(f64, u64)> = (after.iter().zip(before))
        .map(|((le, a), (_, b))| (*le, a - b))
        .collect();
    let total = seen.last().map_or(0, |(_, n)| *n);
    let at = |q: f64| {
        let want = ((q * total as f64).ceil() as u64).max(1);
        seen.iter()
            .find(|(_, n)| *n >= want)
            .map_or(f64::INFINITY, |(le, _)| *le)
    };
    (total, at(0.5), at(0.99))
}
