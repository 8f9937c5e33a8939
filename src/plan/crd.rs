//! The CustomResourceDefinitions of drgitops, generated from the Rust types: DRPlan (`drgitops crd`) and
//! DRPlanOverride (`drgitops crd drplanoverride`).
//!
//! In: nothing. Out: each CRD as a YAML document; `manifests/crd/drplan.yaml` and `manifests/crd/drplanoverride.yaml`
//! are this output, checked by a test.

use kube::CustomResourceExt;
use thiserror::Error;

use super::breakglass::DRPlanOverride;
use super::types::DRPlan;

/// The CRD could not be written as YAML.
#[derive(Debug, Error)]
#[error("cannot serialise the CustomResourceDefinition to YAML")]
pub struct CrdError(#[source] serde_yaml::Error);

/// The DRPlan CustomResourceDefinition.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    DRPlan::crd()
}

/// The DRPlan CustomResourceDefinition as one YAML document (what `drgitops crd` prints).
pub fn crd_yaml() -> Result<String, CrdError> {
    serde_yaml::to_string(&crd()).map_err(CrdError)
}

/// The DRPlanOverride CustomResourceDefinition (break-glass failover).
pub fn override_crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    DRPlanOverride::crd()
}

/// The DRPlanOverride CustomResourceDefinition as one YAML document (what `drgitops crd drplanoverride` prints).
pub fn override_crd_yaml() -> Result<String, CrdError> {
    serde_yaml::to_string(&override_crd()).map_err(CrdError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_required_fields_enums_and_columns() {
        let crd = serde_json::to_value(crd()).unwrap();
        let version = &crd["spec"]["versions"][0];
        assert_eq!(crd["metadata"]["name"], "drplans.drgitops.dev");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert!(version["subresources"]["status"].is_object());
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let required: Vec<&str> = spec["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in ["mode", "primary", "domains", "clusterPair"] {
            assert!(
                required.contains(&field),
                "spec.{field} must be required: {required:?}"
            );
        }
        assert_eq!(
            spec["properties"]["mode"]["enum"],
            serde_json::json!(["async", "metro"])
        );
        let status = &version["schema"]["openAPIV3Schema"]["properties"]["status"];
        assert_eq!(
            status["properties"]["role"]["enum"],
            serde_json::json!(["Primary", "Standby", null])
        );
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Mode", "Primary", "Role", "Phase", "Age"]);
    }

    #[test]
    fn the_override_crd_requires_every_field() {
        let crd = serde_json::to_value(override_crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], "drplanoverrides.drgitops.dev");
        assert_eq!(crd["spec"]["group"], "drgitops.dev");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["required"],
            serde_json::json!(["plan", "primary", "reason", "requestedBy"])
        );
        assert_eq!(spec["properties"]["reason"]["minLength"], 1);
    }
}
