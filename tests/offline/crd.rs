//! `drgitops crd` prints the DRPlan CustomResourceDefinition, and `manifests/crd/drplan.yaml` is exactly that
//! output: regenerate it with `cargo run -- crd > manifests/crd/drplan.yaml` when the types change. The same for
//! `drgitops crd drplanoverride` and `manifests/crd/drplanoverride.yaml`.

use std::path::Path;
use std::process::Command;

#[test]
fn manifests_crd_matches_the_binary_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "drgitops crd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/crd/drplan.yaml");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        printed == committed,
        "manifests/crd/drplan.yaml is stale: regenerate it with `cargo run -- crd > manifests/crd/drplan.yaml`"
    );
    let crd: serde_yaml::Value = serde_yaml::from_str(&printed).unwrap();
    assert_eq!(crd["kind"].as_str(), Some("CustomResourceDefinition"));
    assert_eq!(crd["spec"]["group"].as_str(), Some("drgitops.dev"));
    assert_eq!(
        crd["spec"]["versions"][0]["name"].as_str(),
        Some("v1alpha1")
    );
}

#[test]
fn manifests_override_crd_matches_the_binary_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .args(["crd", "drplanoverride"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "drgitops crd drplanoverride failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/crd/drplanoverride.yaml");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        printed == committed,
        "manifests/crd/drplanoverride.yaml is stale: regenerate it with \
         `cargo run -- crd drplanoverride > manifests/crd/drplanoverride.yaml`"
    );
    let crd: serde_yaml::Value = serde_yaml::from_str(&printed).unwrap();
    assert_eq!(crd["spec"]["group"].as_str(), Some("drgitops.dev"));
    assert_eq!(
        crd["spec"]["names"]["kind"].as_str(),
        Some("DRPlanOverride")
    );
}
