//! The push receiver's signature checks (pure): GitHub `X-Hub-Signature-256`, GitLab `X-Gitlab-Token` and a generic
//! `X-Signature: sha256=<hex>` HMAC, all compared in constant time against one configured secret.
//!
//! In: request headers and the raw body. Out: which provider signed it, or why it is refused. The payload itself is
//! never trusted: an accepted request only triggers a fetch that re-resolves the branch.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bodies above this size are refused (413) before any signature work, as Flux's receiver does.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    GitLab,
    Generic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Generic => "generic",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HookError {
    #[error(
        "no signature: send X-Hub-Signature-256 (GitHub), X-Gitlab-Token (GitLab) or X-Signature: sha256=<hex>"
    )]
    Unsigned,
    #[error("{0} signature does not match the configured secret")]
    BadSignature(&'static str),
    #[error("{0} signature is malformed: expected sha256=<hex>")]
    Malformed(&'static str),
}

/// Checks a push request against `secret`. `header` looks a header up by lower-case name.
pub fn verify<'h>(
    secret: &[u8],
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
) -> Result<Provider, HookError> {
    if let Some(signature) = header("x-hub-signature-256") {
        return verify_hmac(secret, signature, body, "github").map(|()| Provider::GitHub);
    }
    if let Some(token) = header("x-gitlab-token") {
        return if bool::from(token.as_bytes().ct_eq(secret)) {
            Ok(Provider::GitLab)
        } else {
            Err(HookError::BadSignature("gitlab"))
        };
    }
    if let Some(signature) = header("x-signature") {
        return verify_hmac(secret, signature, body, "generic").map(|()| Provider::Generic);
    }
    Err(HookError::Unsigned)
}

fn verify_hmac(
    secret: &[u8],
    signature: &str,
    body: &[u8],
    provider: &'static str,
) -> Result<(), HookError> {
    let hex_digest = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(HookError::Malformed(provider))?;
    let expected = hex::decode(hex_digest).map_err(|_| HookError::Malformed(provider))?;
    let mut mac = hmac_sha256(secret);
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| HookError::BadSignature(provider))
}

fn hmac_sha256(secret: &[u8]) -> Hmac<Sha256> {
    // Invariant: HMAC is defined for keys of every length (long keys are hashed, short ones padded), so
    // `new_from_slice` cannot fail for Hmac<Sha256>.
    Hmac::<Sha256>::new_from_slice(secret).expect("hmac accepts keys of any length")
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`: what GitHub puts in `X-Hub-Signature-256`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac_sha256(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn github_signature_is_checked() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = sign(b"s3cret", body);
        assert_eq!(
            verify(b"s3cret", headers(&[("x-hub-signature-256", &good)]), body),
            Ok(Provider::GitHub)
        );
        let other = sign(b"other", body);
        assert_eq!(
            verify(b"s3cret", headers(&[("x-hub-signature-256", &other)]), body),
            Err(HookError::BadSignature("github"))
        );
        assert_eq!(
            verify(
                b"s3cret",
                headers(&[("x-hub-signature-256", &good)]),
                b"tampered"
            ),
            Err(HookError::BadSignature("github"))
        );
        assert_eq!(
            verify(
                b"s3cret",
                headers(&[("x-hub-signature-256", "sha1=abcd")]),
                body
            ),
            Err(HookError::Malformed("github"))
        );
    }

    #[test]
    fn gitlab_token_is_compared() {
        assert_eq!(
            verify(b"tok", headers(&[("x-gitlab-token", "tok")]), b"{}"),
            Ok(Provider::GitLab)
        );
        assert_eq!(
            verify(b"tok", headers(&[("x-gitlab-token", "to")]), b"{}"),
            Err(HookError::BadSignature("gitlab"))
        );
    }

    #[test]
    fn generic_hmac_and_unsigned() {
        let sig = sign(b"k", b"payload");
        assert_eq!(
            verify(b"k", headers(&[("x-signature", &sig)]), b"payload"),
            Ok(Provider::Generic)
        );
        assert_eq!(
            verify(b"k", headers(&[("x-signature", "sha256=zz")]), b"payload"),
            Err(HookError::Malformed("generic"))
        );
        assert_eq!(
            verify(b"k", headers(&[]), b"payload"),
            Err(HookError::Unsigned)
        );
    }
}
