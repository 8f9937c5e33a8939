//! The admission webhook: AdmissionReviews in, verdicts of the rule engine out.
//!
//! [`review`] turns a review into the rule engine's request and its verdict into the response (pure);
//! [`admission`] is the HTTP handler with its deadline and metrics; [`server`] and [`tls`] serve it over HTTPS
//! with certificate reloads; [`config`] keeps the policy directory loaded; [`admin`] is the plain-HTTP admin
//! port (`/livez`, `/readyz`, `/metrics`); [`metrics`] its Prometheus registry. The process around them
//! (`drgitops webhook`) lives in `cli::webhook`.

pub mod admin;
pub mod admission;
pub mod config;
pub mod metrics;
pub mod review;
pub mod server;
pub mod tls;

use std::path::Path;

use crate::policy::PolicyConfig;

/// Parses the policy directory with the rule engine's own loader.
pub fn load_policies(dir: &Path) -> Result<PolicyConfig, String> {
    PolicyConfig::load_dir(dir).map_err(|err| err.to_string())
}
