//! DRPlan validation and rendering: arbitrary text read as a plan (`plan::validate::parse_and_validate`, as the
//! webhook, `check` and the reconciler read one), and every plan that validates and names its namespace (as the
//! git source and `drgitops render` require) rendered for each of its domains
//! (`plan::render::render`, primary and standby, peer reachable or not, with a valid peer kubeconfig and storage
//! options).
//!
//! Property: a plan that validates renders objects that every admission rule accepts: the plan and its rendered
//! objects, run through the rules as `drgitops check` runs them (each a CREATE by an ordinary user, against a
//! view made of the others), draw no denial; rendering never fails on a valid plan; never a panic.

#![no_main]

use std::path::PathBuf;

use drgitops::cli::check::check;
use drgitops::cluster::file::Manifest;
use drgitops::plan::render::{RenderInputs, StorageOptions, render, role_of};
use drgitops::plan::validate::parse_and_validate;
use drgitops::policy::PolicyConfig;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const KUBECONFIG: &str = "
apiVersion: v1
kind: Config
current-context: peer
contexts:
- name: peer
  context: {cluster: peer, user: admin}
clusters:
- name: peer
  cluster: {server: 'https://peer.example:6443', certificate-authority-data: Q0E=}
users:
- name: admin
  user: {token: secret-token}
";

fn manifest(index: usize, object: Value) -> Manifest {
    Manifest {
        file: PathBuf::from("rendered.yaml"),
        document: index + 1,
        line: 1,
        object,
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Some(doc) = drgitops::manifest::documents(text).into_iter().next() else {
        return;
    };
    let Ok(object) = serde_yaml::from_str::<Value>(doc.text) else {
        return;
    };
    let config = PolicyConfig::default();
    let Ok(plan) = parse_and_validate(&object, &config.admin_namespace) else {
        return;
    };
    // Plans are rendered only from a namespace they name: the git source and `drgitops render` refuse a plan without
    // `metadata.namespace`, and on a cluster the API server sets it. Without one, validation cannot tell whether the
    // plan may protect other namespaces (only one in the admin namespace may), so it is not rendered here either.
    if plan.metadata.namespace.is_none() {
        return;
    }

    let domains: Vec<String> = plan.spec.domains.iter().map(|d| d.name.clone()).collect();
    for local in &domains {
        let role = role_of(&plan, local);
        for peer_reachable in [true, false] {
            let inputs = RenderInputs {
                peer_kubeconfig: Some(KUBECONFIG.to_string()),
                storage: Some(StorageOptions {
                    ip: "10.0.0.9".to_string(),
                    port: "9001".to_string(),
                    token: "px-token".to_string(),
                    backuplocation: None,
                }),
                peer_reachable,
            };
            let rendered = match render(&plan, role, &inputs) {
                Ok(rendered) => rendered,
                Err(err) => panic!("a valid plan does not render: {err}\nplan: {object}"),
            };
            let mut input = vec![manifest(0, object.clone())];
            input.extend(
                rendered
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| manifest(i + 1, o)),
            );
            let report = check(&input, &[], &config, Some(local), 1);
            let denied: Vec<String> = report
                .findings
                .iter()
                .filter(|f| f.action == "deny")
                .map(|f| format!("{}/{}: [{}] {}", f.kind, f.name, f.rule, f.message))
                .collect();
            assert!(
                denied.is_empty(),
                "a valid plan renders objects the rules deny ({role:?} in {local}):\n{}\nplan: {object}\nobjects: {:#?}",
                denied.join("\n"),
                input.iter().map(|m| &m.object).collect::<Vec<_>>()
            );
        }
    }
});
