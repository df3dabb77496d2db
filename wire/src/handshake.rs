//! The first exchange on every connection, and the shared-secret proof.
//!
//! ```text
//! peer   -> master : Hello   { protocol, role, name, nonce_p }
//! master -> peer   : Welcome { protocol, name, nonce_m, proof_m?, lease_ms? }
//! peer   -> master : Proof   { proof_p? }
//! master -> peer   : Accepted | Error
//! ```
//! With a secret configured on both sides, each proves it knows it without
//! sending it: `proof = HMAC-SHA256(secret, label ‖ nonce_p ‖ nonce_m ‖ role ‖ name)`
//! with a different label per direction, so a proof cannot be reflected back.
//! Fresh random nonces on both sides mean a recorded proof cannot be replayed.
//! A master without a secret accepts anyone (and warns at start); a peer with a
//! secret refuses a master that cannot prove it knows the same one.

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::Path;

/// Bumped on any change old peers cannot follow. A master refuses a newer
/// protocol with a clear error rather than guessing.
pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Worker,
    Foreman,
    Client,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Worker => "worker",
            Role::Foreman => "foreman",
            Role::Client => "client",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub role: Role,
    /// A holder's name is its identity across reconnects.
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The master's proof; `None` when the master has no secret.
    #[serde(with = "serde_bytes", default)]
    pub proof: Option<Vec<u8>>,
    /// The lease the master grants its holders, in ms: after a lost
    /// connection, or a master restart, a holder has this long to come back
    /// before its jobs are requeued. Holders keep their reconnect backoff
    /// well inside it. `None` from masters that predate the field (named
    /// msgpack fields: either side ignores what it does not know).
    #[serde(default)]
    pub lease_ms: Option<u64>,
}

pub const NONCE_LEN: usize = 32;

pub fn fresh_nonce() -> Vec<u8> {
    let mut n = vec![0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut n);
    n
}

/// A shared secret, read from a password file.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read password file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("password file {path} is empty")]
    Empty { path: String },
}

/// Which side is proving: the labels keep the two proofs distinct.
#[derive(Debug, Clone, Copy)]
pub enum Prover {
    Master,
    Peer,
}

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// Reads a password file; a trailing newline is not part of the secret.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let p = path.display().to_string();
        let mut bytes = std::fs::read(path).map_err(|source| SecretError::Read {
            path: p.clone(),
            source,
        })?;
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        if bytes.is_empty() {
            return Err(SecretError::Empty { path: p });
        }
        Ok(Secret(bytes))
    }

    fn mac(&self, who: Prover, hello: &Hello, master_nonce: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        let label: &[u8] = match who {
            Prover::Master => b"pilotq master proof v1",
            Prover::Peer => b"pilotq peer proof v1",
        };
        // Length-prefix every field so that no two different inputs concatenate
        // to the same bytes.
        for part in [
            label,
            &hello.nonce,
            master_nonce,
            hello.role.to_string().as_bytes(),
            hello.name.as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    pub fn prove(&self, who: Prover, hello: &Hello, master_nonce: &[u8]) -> Vec<u8> {
        self.mac(who, hello, master_nonce)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Checks a proof in constant time.
    pub fn verify(&self, who: Prover, hello: &Hello, master_nonce: &[u8], proof: &[u8]) -> bool {
        self.mac(who, hello, master_nonce)
            .verify_slice(proof)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            role: Role::Worker,
            name: "w1".into(),
            nonce: fresh_nonce(),
        }
    }

    #[test]
    fn the_right_secret_proves_and_a_wrong_one_does_not() {
        let s = Secret::new("hunter2");
        let h = hello();
        let mn = fresh_nonce();
        let proof = s.prove(Prover::Peer, &h, &mn);
        assert!(s.verify(Prover::Peer, &h, &mn, &proof));
        assert!(!Secret::new("hunter3").verify(Prover::Peer, &h, &mn, &proof));
        // A master's proof is not a peer's proof: no reflection.
        assert!(!s.verify(Prover::Master, &h, &mn, &proof));
        // A different nonce (a replayed proof) fails.
        assert!(!s.verify(Prover::Peer, &h, &fresh_nonce(), &proof));
        assert!(!s.verify(Prover::Peer, &h, &mn, &proof[..10]));
    }

    /// A `Welcome` from a master that predates `lease_ms` still decodes
    /// (as no lease), and an old peer can skip the new field.
    #[test]
    fn a_welcome_without_a_lease_decodes_and_an_old_peer_skips_it() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct OldWelcome {
            protocol: u32,
            name: String,
            #[serde(with = "serde_bytes")]
            nonce: Vec<u8>,
            #[serde(with = "serde_bytes", default)]
            proof: Option<Vec<u8>>,
        }
        let old = OldWelcome {
            protocol: 1,
            name: "m".into(),
            nonce: vec![7; NONCE_LEN],
            proof: None,
        };
        let bytes = rmp_serde::to_vec_named(&old).unwrap();
        let w: Welcome = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(w.lease_ms, None);
        assert_eq!(w.nonce, old.nonce);

        let new = Welcome {
            protocol: 1,
            name: "m".into(),
            nonce: vec![7; NONCE_LEN],
            proof: None,
            lease_ms: Some(60_000),
        };
        let bytes = rmp_serde::to_vec_named(&new).unwrap();
        assert_eq!(rmp_serde::from_slice::<Welcome>(&bytes).unwrap(), new);
        assert_eq!(rmp_serde::from_slice::<OldWelcome>(&bytes).unwrap(), old);
    }

    #[test]
    fn password_file_drops_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("pilotq-secret-{}", std::process::id()));
        std::fs::write(&dir, "pw\n").unwrap();
        let s = Secret::from_file(&dir).unwrap();
        assert_eq!(s.0, b"pw");
        std::fs::write(&dir, "\n").unwrap();
        assert!(matches!(
            Secret::from_file(&dir),
            Err(SecretError::Empty { .. })
        ));
        std::fs::remove_file(&dir).unwrap();
    }
}
