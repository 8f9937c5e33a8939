//! An arbitrary body through the admission handler's pure path (`Review::parse`, `policy::evaluate`,
//! `review::respond`, `ResponseReview::to_bytes`), on both endpoints, with the default policy and a fixed view.
//!
//! Property: the answer is always a well-formed `admission.k8s.io/v1` AdmissionReview response; it echoes
//! `request.uid` whenever the body is JSON with a string there; only `/mutate` answers with a patch, typed
//! `JSONPatch`, and that patch applies cleanly to the request's object; a denial carries a 4xx status; never a
//! panic.

#![no_main]

use base64::Engine as _;
use drgitops::policy::{PolicyConfig, evaluate};
use drgitops::webhook::review::{self, Endpoint, Response, ResponseReview, Review};
use drgitops_fuzz::FixedView;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn answer(body: &[u8], endpoint: Endpoint, config: &PolicyConfig) -> (Response, Option<Review>) {
    match Review::parse(body) {
        Ok(review) => {
            let decision = evaluate(&review.request(), &FixedView, config);
            let response = review::respond(&review.uid, &decision, endpoint);
            (response, Some(review))
        }
        Err(err) => (
            Response::invalid(review::salvage_uid(body), err.to_string()),
            None,
        ),
    }
}

fuzz_target!(|body: &[u8]| {
    let config = PolicyConfig::default();
    // The uid a reader of the body would see: `request.uid` when the body is JSON and it is a string there.
    let sent_uid = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/request/uid")?.as_str().map(str::to_string));
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let (response, review) = answer(body, endpoint, &config);
        let bytes = ResponseReview::new(response).to_bytes();
        let out: Value = serde_json::from_slice(&bytes).expect("the answer is JSON");
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1", "{out}");
        assert_eq!(out["kind"], "AdmissionReview", "{out}");
        let resp = &out["response"];
        let uid = resp["uid"].as_str().expect("response.uid is a string");
        let allowed = resp["allowed"]
            .as_bool()
            .expect("response.allowed is a bool");
        if let Some(sent) = &sent_uid {
            assert_eq!(uid, sent, "the answer echoes the uid");
        }
        if let Some(review) = &review {
            assert_eq!(uid, review.uid, "the answer echoes the parsed uid");
        } else {
            assert!(!allowed, "a body that is not a review is never allowed");
            assert_eq!(resp["status"]["code"], 400, "{out}");
        }
        if !allowed {
            let code = resp["status"]["code"]
                .as_u64()
                .expect("a refusal has a status code");
            assert!(code == 400 || code == 403, "{out}");
            assert!(
                resp["status"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "a refusal says why: {out}"
            );
        }
        if let Some(warnings) = resp.get("warnings") {
            for w in warnings.as_array().expect("warnings is a list") {
                let w = w.as_str().expect("a warning is a string");
                assert!(w.chars().count() <= review::MAX_WARNING_CHARS, "{w}");
            }
        }
        match resp.get("patch") {
            None => assert!(resp.get("patchType").is_none(), "{out}"),
            Some(patch) => {
                assert_eq!(endpoint, Endpoint::Mutate, "only /mutate patches: {out}");
                assert!(allowed, "a patch comes with an allowed answer");
                assert_eq!(resp["patchType"], "JSONPatch", "{out}");
                let patch = base64::engine::general_purpose::STANDARD
                    .decode(patch.as_str().expect("the patch is a string"))
                    .expect("the patch is base64");
                let patch: json_patch::Patch =
                    serde_json::from_slice(&patch).expect("the patch is a JSON Patch");
                assert!(!patch.0.is_empty(), "an empty patch is left out");
                let mut object = review
                    .as_ref()
                    .and_then(|r| r.object.clone())
                    .expect("a patch is only made for an object");
                if let Err(err) = json_patch::patch(&mut object, &patch) {
                    panic!(
                        "the patch does not apply to the object: {err}\npatch: {patch:?}\nobject: {object}"
                    );
                }
            }
        }
    }
});
