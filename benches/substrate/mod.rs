//! Which API server a bench runs against: `DRGITOPS_BENCH_SUBSTRATE=real` selects real control planes
//! (`tests/testenv`, set up with the shipped manifests by `tests/testkit`); unset or `memory`, the in-memory API
//! server (`tests/fake-apiserver`), which the figures recorded before the real substrate existed were taken on.

const SUBSTRATE_ENV: &str = "DRGITOPS_BENCH_SUBSTRATE";

/// Whether `DRGITOPS_BENCH_SUBSTRATE=real`. Any value but `real` and `memory` is refused, so a typo never
/// measures the other substrate.
pub fn real() -> bool {
    match std::env::var(SUBSTRATE_ENV).as_deref() {
        Ok("real") => true,
        Ok("memory") | Err(_) => false,
        Ok(other) => panic!("{SUBSTRATE_ENV}={other}: expected `real` or `memory`"),
    }
}
