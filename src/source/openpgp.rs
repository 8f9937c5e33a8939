//! OpenPGP commit signatures: armored public keys as trusted signers, and the `gpgsig` of a commit signed with
//! `gpg.format openpgp` (git's default). Pure: text in, a verdict out.
//!
//! In: the text of a trusted-signers file that holds one or more `-----BEGIN PGP PUBLIC KEY BLOCK-----` blocks
//! (`gpg --armor --export`, one key or a keyring), then per commit the armored signature and the signed bytes.
//! Out: the keys that may sign (primary keys and signing subkeys whose self-signatures verify, not revoked), and for
//! a commit `Ok` or why its signature is not good enough, naming the key by fingerprint.

use pgp::composed::{Deserializable as _, DetachedSignature, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails as _, Timestamp};

const PUBLIC_BLOCK: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const PRIVATE_BLOCK: &str = "-----BEGIN PGP PRIVATE KEY BLOCK-----";
/// How an armored OpenPGP signature starts (the `gpgsig` header of a commit signed by gpg).
pub const SIGNATURE_BLOCK: &str = "-----BEGIN PGP SIGNATURE-----";

/// Whether a trusted-signers file's text is OpenPGP (rather than an SSH allowed_signers file).
pub fn is_openpgp(text: &str) -> bool {
    text.contains(PUBLIC_BLOCK) || text.contains(PRIVATE_BLOCK)
}

/// A key that may sign commits: a primary key or a signing subkey of a trusted certificate.
#[derive(Clone, Debug)]
pub struct SigningKey {
    /// The certificate's first user ID (`Name <email>`), or its primary fingerprint when it has none.
    pub owner: String,
    /// This key's fingerprint, upper-case hex as gpg prints it.
    pub fingerprint: String,
    key: VerifyWith,
    /// Seconds since the epoch after which the key may no longer sign, if it expires.
    expires: Option<u64>,
    created: u64,
}

#[derive(Clone, Debug)]
enum VerifyWith {
    Primary(pgp::packet::PublicKey),
    Subkey(pgp::packet::PublicSubkey),
}

impl SigningKey {
    fn matches(&self, signature: &Signature) -> bool {
        let (fingerprint, key_id) = match &self.key {
            VerifyWith::Primary(k) => (k.fingerprint(), k.legacy_key_id()),
            VerifyWith::Subkey(k) => (k.fingerprint(), k.legacy_key_id()),
        };
        let by_fingerprint = signature.issuer_fingerprint();
        if !by_fingerprint.is_empty() {
            return by_fingerprint.contains(&&fingerprint);
        }
        signature.issuer_key_id().contains(&&key_id)
    }

    fn verify(&self, signature: &DetachedSignature, data: &[u8]) -> pgp::errors::Result<()> {
        match &self.key {
            VerifyWith::Primary(k) => signature.verify(k, data),
            VerifyWith::Subkey(k) => signature.verify(k, data),
        }
    }
}

/// The signing keys of every certificate in the armored text. A private key, a certificate whose
/// self-signatures do not verify, or a revoked one is refused rather than skipped: the file says who may fail
/// over, and it must say so plainly.
pub fn parse_keys(text: &str) -> Result<Vec<SigningKey>, String> {
    if text.contains(PRIVATE_BLOCK) {
        return Err(
            "holds an OpenPGP private key; give the public key only (gpg --armor --export KEY)"
                .into(),
        );
    }
    let mut keys = Vec::new();
    // A keyring may be one armored block of several certificates or several blocks one after another.
    for block in text.split(PUBLIC_BLOCK).skip(1) {
        let armored = format!("{PUBLIC_BLOCK}{block}");
        let (certificates, _) = SignedPublicKey::from_string_many(&armored)
            .map_err(|e| format!("not an armored OpenPGP public key: {e}"))?;
        for certificate in certificates {
            let certificate =
                certificate.map_err(|e| format!("not an armored OpenPGP public key: {e}"))?;
            keys.extend(signing_keys(&certificate)?);
        }
    }
    if keys.is_empty() {
        return Err("no OpenPGP key that may sign".into());
    }
    Ok(keys)
}

fn signing_keys(certificate: &SignedPublicKey) -> Result<Vec<SigningKey>, String> {
    let primary = &certificate.primary_key;
    let fingerprint = hex_upper(&primary.fingerprint());
    certificate.verify_bindings().map_err(|e| {
        format!(
            "OpenPGP key {fingerprint}: its self-signatures do not verify ({e}); export it again"
        )
    })?;
    if !certificate.details.revocation_signatures.is_empty() {
        return Err(format!(
            "OpenPGP key {fingerprint} is revoked; remove it from the trusted signers"
        ));
    }
    let owner = certificate
        .details
        .users
        .iter()
        .find_map(|u| u.id.as_str().map(str::to_string))
        .unwrap_or_else(|| fingerprint.clone());
    let created = u64::from(primary.created_at().as_secs());
    // The newest self-signature on a user ID (or directly on the key) says what the primary key may do.
    let self_signature = certificate
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(certificate.details.direct_signatures.iter())
        .max_by_key(|s| s.created().map(Timestamp::as_secs));
    let primary_expires = self_signature.and_then(|s| expiry(created, s));
    let mut keys = Vec::new();
    let flags = self_signature.map(Signature::key_flags);
    if flags.is_none_or(|f| f.sign() || !(f.certify() || f.encrypt_comms() || f.authentication())) {
        keys.push(SigningKey {
            owner: owner.clone(),
            fingerprint,
            key: VerifyWith::Primary(primary.clone()),
            expires: primary_expires,
            created,
        });
    }
    for subkey in &certificate.public_subkeys {
        let revoked = subkey
            .signatures
            .iter()
            .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
        let Some(binding) = subkey
            .signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
            .max_by_key(|s| s.created().map(Timestamp::as_secs))
        else {
            continue;
        };
        if revoked || !binding.key_flags().sign() {
            continue;
        }
        let sub_created = u64::from(subkey.key.created_at().as_secs());
        let expires = match (expiry(sub_created, binding), primary_expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        keys.push(SigningKey {
            owner: owner.clone(),
            fingerprint: hex_upper(&subkey.key.fingerprint()),
            key: VerifyWith::Subkey(subkey.key.clone()),
            expires,
            created: sub_created,
        });
    }
    Ok(keys)
}

/// When a key created at `created` expires according to `signature` (0 or absent: never).
fn expiry(created: u64, signature: &Signature) -> Option<u64> {
    signature
        .key_expiration_time()
        .map(|d| u64::from(d.as_secs()))
        .filter(|&secs| secs > 0)
        .map(|secs| created + secs)
}

fn hex_upper(fingerprint: &pgp::types::Fingerprint) -> String {
    fingerprint.to_string().to_ascii_uppercase()
}

/// `Ok` when `armored` is a good OpenPGP signature over `data` by one of `keys`, made while that key was valid;
/// else why not, as the end of "commit X by Y ... but {reason}".
pub fn verify(keys: &[SigningKey], armored: &str, data: &[u8]) -> Result<(), String> {
    let (signature, _) = DetachedSignature::from_string(armored.trim())
        .map_err(|e| format!("its OpenPGP signature cannot be read ({e})"))?;
    let packet = &signature.signature;
    if !matches!(
        packet.typ(),
        Some(SignatureType::Binary | SignatureType::Text)
    ) {
        return Err("its OpenPGP signature is not a signature over the commit".into());
    }
    let issuer = packet
        .issuer_fingerprint()
        .first()
        .map(|f| hex_upper(f))
        .or_else(|| {
            packet
                .issuer_key_id()
                .first()
                .map(|k| k.to_string().to_ascii_uppercase())
        })
        .unwrap_or_else(|| "(no issuer)".into());
    let Some(key) = keys.iter().find(|k| k.matches(packet)) else {
        return Err(format!(
            "is signed by OpenPGP key {issuer}, which is not a trusted signer"
        ));
    };
    key.verify(&signature, data).map_err(|_| {
        format!(
            "its OpenPGP signature by {} ({}) does not verify",
            key.owner, key.fingerprint
        )
    })?;
    let made = packet.created().map(|t| u64::from(t.as_secs()));
    match made {
        None => Err("its OpenPGP signature carries no creation time".into()),
        Some(made) if made < key.created => Err(format!(
            "its OpenPGP signature by {} ({}) predates the key",
            key.owner, key.fingerprint
        )),
        Some(made) if key.expires.is_some_and(|expires| made >= expires) => Err(format!(
            "is signed by OpenPGP key {} ({}) after it expired",
            key.fingerprint, key.owner
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openpgp_files_are_told_apart_by_content() {
        assert!(is_openpgp(
            "# keys\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"
        ));
        assert!(!is_openpgp(
            "oncall@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID99\n"
        ));
    }

    #[test]
    fn private_keys_and_garbage_are_refused() {
        let private =
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlFgEZ\n-----END PGP PRIVATE KEY BLOCK-----\n";
        assert!(parse_keys(private).unwrap_err().contains("private key"));
        let garbage =
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n";
        assert!(
            parse_keys(garbage)
                .unwrap_err()
                .contains("not an armored OpenPGP public key")
        );
    }
}
