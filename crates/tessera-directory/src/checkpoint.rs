//! Signed checkpoints of a tenant's audit chain head.
//!
//! The chain alone cannot show that events were cut off its end, that the whole trail
//! was wiped, or that someone with write access rewrote an event and recomputed every
//! later hash and the head: all of that leaves a chain that links. A checkpoint is the
//! head `(seq, hash)` at a moment, signed with an Ed25519 key the database does not
//! hold and exported to where the database's writers cannot reach. Checked later
//! against the database, with the operator's pinned public key, it shows:
//!
//! - a wipe: the tenant has no events, yet a checkpoint names event `seq > 0`;
//! - tail truncation: the head is before the checkpoint's event;
//! - a rewrite (a forged event, a recomputed chain): the event at the checkpoint's
//!   sequence number no longer has the checkpoint's hash.
//!
//! A checkpoint is one JSON line, so a file of them can be appended to and read
//! without a parser for anything else; lines that are not checkpoints (other messages
//! of a syslog file) are skipped, and a checkpoint after a syslog header is found.
//! The signed message is a fixed text, not the JSON, so no canonical JSON is needed.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;
use tessera_core::crypto::{Ed25519Key, GENESIS_HASH, ed25519_verify, sha256_hex};
use uuid::Uuid;

/// The `type` of every checkpoint line.
pub const CHECKPOINT_TYPE: &str = "tessera.audit.checkpoint";

/// One signed checkpoint, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant_id: Uuid,
    /// The head's sequence number (0 for a tenant without events).
    pub seq: i64,
    /// The head's hash: the hash of event `seq`.
    pub hash: String,
    pub time: Timestamp,
    /// [`key_id`] of the signing key.
    pub key_id: String,
    /// The signing key's public key, base64url. Informational: a verifier checks the
    /// signature with the key the operator pinned, never with this one.
    pub public_key: String,
    /// Ed25519 signature of [`Checkpoint::signed_message`], base64url.
    pub signature: String,
}

/// A short, stable name for a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8]) -> String {
    sha256_hex(public_key).chars().take(16).collect()
}

/// A public key as the operator gives it: base64url or standard base64 of the 32
/// raw bytes (as `tessera audit checkpoint-key` prints it).
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(text))
        .map_err(|_| "the public key is not base64".to_string())?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| "an Ed25519 public key is 32 bytes".to_string())
}

pub fn encode_public_key(public_key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(public_key)
}

impl Checkpoint {
    /// Signs the head `(seq, hash)` of `tenant` at `time`.
    pub fn sign(
        key: &Ed25519Key,
        tenant: Uuid,
        seq: i64,
        hash: &str,
        time: Timestamp,
    ) -> Checkpoint {
        let public_key = key.public_key();
        let key_id = key_id(&public_key);
        let message = signed_message(tenant, seq, hash, time, &key_id);
        Checkpoint {
            kind: CHECKPOINT_TYPE.to_string(),
            tenant_id: tenant,
            seq,
            hash: hash.to_string(),
            time,
            key_id,
            public_key: encode_public_key(&public_key),
            signature: URL_SAFE_NO_PAD.encode(key.sign(message.as_bytes())),
        }
    }

    /// The one-line JSON form.
    pub fn to_line(&self) -> String {
        // PANIC SAFETY: a struct of strings, numbers and a timestamp always serializes.
        #[allow(clippy::expect_used)]
        serde_json::to_string(self).expect("a checkpoint serializes")
    }

    pub fn signed_message(&self) -> String {
        signed_message(
            self.tenant_id,
            self.seq,
            &self.hash,
            self.time,
            &self.key_id,
        )
    }

    /// Checks the signature with the operator's pinned key. A checkpoint signed by any
    /// other key is refused, whatever public key it carries.
    pub fn check_signature(&self, pinned: &[u8; 32]) -> Result<(), CheckpointProblem> {
        if self.key_id != key_id(pinned) {
            return Err(CheckpointProblem {
                kind: CheckpointFailure::UnknownKey,
                detail: format!(
                    "signed by key {}, not by the pinned key {}",
                    self.key_id,
                    key_id(pinned)
                ),
            });
        }
        let signature = URL_SAFE_NO_PAD.decode(&self.signature).unwrap_or_default();
        if !ed25519_verify(pinned, self.signed_message().as_bytes(), &signature) {
            return Err(CheckpointProblem {
                kind: CheckpointFailure::BadSignature,
                detail: "the signature does not verify with the pinned key".to_string(),
            });
        }
        Ok(())
    }

    /// Checks the checkpoint against the database as it is now: `head_seq` is the
    /// tenant's recorded head (0 when it has none), `event_hash` the hash of the stored
    /// event at the checkpoint's sequence number (`None` when there is none).
    pub fn check_against(
        &self,
        head_seq: i64,
        event_hash: Option<&str>,
    ) -> Result<(), CheckpointProblem> {
        if self.seq == 0 {
            // Signed before the tenant's first event: nothing to anchor.
            return Ok(());
        }
        if head_seq == 0 {
            return Err(CheckpointProblem {
                kind: CheckpointFailure::Wiped,
                detail: format!(
                    "the tenant has no audit events, but the checkpoint records event {}",
                    self.seq
                ),
            });
        }
        if head_seq < self.seq {
            return Err(CheckpointProblem {
                kind: CheckpointFailure::Truncated,
                detail: format!(
                    "the chain's head is event {head_seq}, before the checkpoint's event {}: events were cut off its end",
                    self.seq
                ),
            });
        }
        match event_hash {
            None => Err(CheckpointProblem {
                kind: CheckpointFailure::Removed,
                detail: format!("event {} is missing", self.seq),
            }),
            Some(hash) if hash != self.hash => Err(CheckpointProblem {
                kind: CheckpointFailure::Rewritten,
                detail: format!(
                    "event {} has hash {hash}, the checkpoint {}: the chain up to it was rewritten",
                    self.seq, self.hash
                ),
            }),
            Some(_) => Ok(()),
        }
    }
}

fn signed_message(tenant: Uuid, seq: i64, hash: &str, time: Timestamp, key_id: &str) -> String {
    format!(
        "{CHECKPOINT_TYPE}.v1\n{tenant}\n{seq}\n{hash}\n{}\n{key_id}",
        time.unix_micros()
    )
}

/// Reads one line of a checkpoint file: `Ok(None)` for a line that is not a
/// checkpoint (blank, or another program's syslog message), an error for a line that
/// claims to be one and is malformed. The JSON may follow a syslog header.
pub fn parse_line(line: &str) -> Result<Option<Checkpoint>, String> {
    if !line.contains(CHECKPOINT_TYPE) {
        return Ok(None);
    }
    let Some(start) = line.find('{') else {
        return Err("no JSON object in a checkpoint line".to_string());
    };
    let checkpoint: Checkpoint = serde_json::from_str(line[start..].trim_end())
        .map_err(|e| format!("not a valid checkpoint: {e}"))?;
    if checkpoint.kind != CHECKPOINT_TYPE {
        return Err(format!(
            "the type is {}, not {CHECKPOINT_TYPE}",
            checkpoint.kind
        ));
    }
    if checkpoint.seq < 0 {
        return Err("a negative sequence number".to_string());
    }
    let well_formed_hash = checkpoint.hash.len() == GENESIS_HASH.len()
        && checkpoint
            .hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed_hash {
        return Err("the hash is not 64 lowercase hex digits".to_string());
    }
    Ok(Some(checkpoint))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum CheckpointFailure {
    /// Signed by a key other than the pinned one.
    UnknownKey,
    /// The signature does not verify: the checkpoint was altered or forged.
    BadSignature,
    /// The tenant has no events any more.
    Wiped,
    /// The head is before the checkpoint's event.
    Truncated,
    /// The checkpoint's event is gone from the middle of the chain.
    Removed,
    /// The event at the checkpoint's sequence number has another hash.
    Rewritten,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CheckpointProblem {
    pub kind: CheckpointFailure,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::crypto::audit_link_hash;

    fn key() -> Ed25519Key {
        Ed25519Key::generate().unwrap().0
    }

    fn hash(n: i64) -> String {
        audit_link_hash(GENESIS_HASH, n, "{}")
    }

    fn checkpoint(key: &Ed25519Key, seq: i64) -> Checkpoint {
        Checkpoint::sign(
            key,
            Uuid::from_u128(7),
            seq,
            &hash(seq),
            Timestamp::from_unix_micros(1_700_000_000_000_000),
        )
    }

    #[test]
    fn a_checkpoint_round_trips_through_its_line_and_verifies_with_its_key() {
        let key = key();
        let signed = checkpoint(&key, 5);
        let parsed = parse_line(&signed.to_line()).unwrap().unwrap();
        assert_eq!(parsed, signed);
        assert_eq!(parsed.check_signature(&key.public_key()), Ok(()));
        // After a syslog header too.
        let syslog = format!(
            "<110>1 2026-01-01T00:00:00Z host tessera - - - {}",
            signed.to_line()
        );
        assert_eq!(parse_line(&syslog).unwrap(), Some(signed));
    }

    #[test]
    fn a_checkpoint_by_another_key_is_refused_even_when_it_names_itself() {
        let pinned = key();
        let intruder = key();
        let forged = checkpoint(&intruder, 5);
        let problem = forged.check_signature(&pinned.public_key()).unwrap_err();
        assert_eq!(problem.kind, CheckpointFailure::UnknownKey);
        // Claiming the pinned key's id does not help: the signature is checked with it.
        let mut claimed = forged.clone();
        claimed.key_id = key_id(&pinned.public_key());
        claimed.public_key = encode_public_key(&pinned.public_key());
        let problem = claimed.check_signature(&pinned.public_key()).unwrap_err();
        assert_eq!(problem.kind, CheckpointFailure::BadSignature);
    }

    #[test]
    fn any_edited_field_breaks_the_signature() {
        let key = key();
        let signed = checkpoint(&key, 5);
        let mut edits = Vec::new();
        let mut c = signed.clone();
        c.seq = 4;
        edits.push(c);
        let mut c = signed.clone();
        c.hash = hash(6);
        edits.push(c);
        let mut c = signed.clone();
        c.tenant_id = Uuid::from_u128(8);
        edits.push(c);
        let mut c = signed.clone();
        c.time = Timestamp::from_unix_micros(1);
        edits.push(c);
        let mut c = signed.clone();
        c.signature = "AAAA".to_string();
        edits.push(c);
        for edited in edits {
            assert_eq!(
                edited.check_signature(&key.public_key()).unwrap_err().kind,
                CheckpointFailure::BadSignature,
                "{edited:?}"
            );
        }
    }

    fn check(seq: i64, head_seq: i64, event_hash: Option<String>) -> Option<CheckpointFailure> {
        let signed = checkpoint(&key(), seq);
        signed
            .check_against(head_seq, event_hash.as_deref())
            .err()
            .map(|p| p.kind)
    }

    #[test]
    fn the_database_is_checked_against_the_checkpoint() {
        assert_eq!(check(5, 5, Some(hash(5))), None);
        assert_eq!(check(5, 9, Some(hash(5))), None);
        assert_eq!(check(0, 0, None), None);
        assert_eq!(check(5, 0, None), Some(CheckpointFailure::Wiped));
        assert_eq!(
            check(5, 4, Some(hash(4))),
            Some(CheckpointFailure::Truncated)
        );
        assert_eq!(check(5, 9, None), Some(CheckpointFailure::Removed));
        assert_eq!(
            check(5, 9, Some(hash(6))),
            Some(CheckpointFailure::Rewritten)
        );
    }

    #[test]
    fn lines_that_are_not_checkpoints_are_skipped_and_broken_ones_refused() {
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("<30>1 - host sshd - - - accepted"), Ok(None));
        assert!(parse_line("tessera.audit.checkpoint").is_err());
        assert!(parse_line("{\"type\":\"tessera.audit.checkpoint\"}").is_err());
        let mut line: serde_json::Value =
            serde_json::from_str(&checkpoint(&key(), 5).to_line()).unwrap();
        line["hash"] = "XYZ".into();
        assert!(parse_line(&line.to_string()).is_err());
        line["hash"] = hash(5).into();
        line["seq"] = (-1).into();
        assert!(parse_line(&line.to_string()).is_err());
        line["seq"] = 5.into();
        line["extra"] = 1.into();
        assert!(parse_line(&line.to_string()).is_err());
    }

    #[test]
    fn public_keys_parse_in_both_base64_alphabets() {
        let key = key();
        let public = key.public_key();
        assert_eq!(parse_public_key(&encode_public_key(&public)), Ok(public));
        assert_eq!(
            parse_public_key(&format!(" {} \n", STANDARD.encode(public))),
            Ok(public)
        );
        assert!(parse_public_key("AAAA").is_err());
        assert!(parse_public_key("not base64!").is_err());
    }
}
