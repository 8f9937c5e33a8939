//! `clusterdomain-update`: a ClusterDomainUpdate acts once and is terminal, so a wrong one cannot be taken back
//! by editing it; a domain that does not exist fails, and deactivating the last active one stops all storage.

use super::{Ctx, Out, wrong_type};
use crate::policy::Operation;
use crate::policy::value::{Field, bool_at, str_at};

pub fn update(ctx: &Ctx<'_>, out: &mut Out) {
    // Stork ignores spec edits after the update ran; only what is created acts.
    if ctx.req.operation != Operation::Create {
        return;
    }
    let domain = match str_at(ctx.object, &["spec", "clusterdomain"]) {
        Field::Present(d) if !d.is_empty() => d,
        Field::WrongType(v) => {
            return wrong_type(
                out,
                "spec.clusterdomain".to_string(),
                "a cluster domain name",
                v,
            );
        }
        _ => {
            return out.violation(
                "spec.clusterdomain",
                "missing: name the cluster domain to activate or deactivate (the key is all lower-case: clusterdomain)",
            );
        }
    };
    // Go's `bool` (not a pointer): absent reads as false, i.e. deactivate.
    let active = match bool_at(ctx.object, &["spec", "active"]) {
        Field::Present(a) => a,
        Field::Absent => false,
        Field::WrongType(v) => return wrong_type(out, "spec.active".to_string(), "a boolean", v),
    };
    let Some(domains) = ctx.view.cluster_domains() else {
        return;
    };
    let names: Vec<&str> = domains.iter().map(|d| d.name.as_str()).collect();
    if !names.contains(&domain) {
        out.violation(
            "spec.clusterdomain",
            format!("cluster domain {domain:?} does not exist: ClusterDomainsStatus reports {names:?}; use one of them"),
        );
        return;
    }
    if !active && !domains.iter().any(|d| d.active && d.name != domain) {
        out.violation(
            "spec.active",
            format!(
                "deactivating {domain:?} would leave no active cluster domain{}: every volume would stop; activate \
                 another domain first",
                if ctx.object["spec"].get("active").is_none() { " (spec.active is absent, which means false)" } else { "" }
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::rules::testing::{Case, FakeView};

    fn cdu(spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "ClusterDomainUpdate",
               "metadata": {"name": "deactivate-east"}, "spec": spec})
    }

    #[test]
    fn update_table() {
        let both = FakeView {
            domains: Some(vec![("east", true), ("west", true)]),
            ..Default::default()
        };
        let one = FakeView {
            domains: Some(vec![("east", true), ("west", false)]),
            ..Default::default()
        };
        let unknown = FakeView::default();
        let r = "clusterdomain-update";
        let cases = [
            (
                Case::new(
                    "deactivate one of two",
                    cdu(json!({"clusterdomain": "east", "active": false})),
                ),
                &both,
            ),
            (
                Case::new(
                    "deactivate the last",
                    cdu(json!({"clusterdomain": "east", "active": false})),
                )
                .expect(r, "deny", "spec.active"),
                &one,
            ),
            (
                Case::new(
                    "absent active means deactivate",
                    cdu(json!({"clusterdomain": "east"})),
                )
                .expect(r, "deny", "spec.active"),
                &one,
            ),
            (
                Case::new(
                    "activate",
                    cdu(json!({"clusterdomain": "west", "active": true})),
                ),
                &one,
            ),
            (
                Case::new(
                    "unknown domain",
                    cdu(json!({"clusterdomain": "north", "active": true})),
                )
                .expect(r, "deny", "spec.clusterdomain"),
                &both,
            ),
            (
                Case::new("no domain", cdu(json!({"active": true}))).expect(
                    r,
                    "deny",
                    "spec.clusterdomain",
                ),
                &both,
            ),
            (
                Case::new(
                    "no ClusterDomainsStatus known",
                    cdu(json!({"clusterdomain": "north", "active": false})),
                ),
                &unknown,
            ),
        ];
        for (case, view) in cases {
            case.check(view);
        }
    }
}
