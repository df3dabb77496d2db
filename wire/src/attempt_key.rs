//! Attempt keys: proof that a holder got an attempt from the one that was
//! given it.
//!
//! A worker that loses its upstream fails over to another, carrying the
//! attempts it holds; the new upstream reports them, and the master moves
//! them to it (`JobMoved`). Every pilot knows the holder secret, so the
//! secret cannot tell that fail-over from a stranger naming a gone holder's
//! attempt to report a forged result. The key can: the master gives each
//! attempt a key with its dispatch (an HMAC of the attempt under a key only
//! the master has), foremen pass it down with their own dispatches, workers
//! keep it, and a holder that reports an attempt dispatched to another must
//! show it.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

use crate::JobId;

/// 128 bits of an HMAC-SHA256: unguessable, and small beside a dispatch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AttemptKey(pub [u8; 16]);

impl AttemptKey {
    /// The key of `attempt` of `job` under the master's `site_key`.
    pub fn derive(site_key: &[u8], job: JobId, attempt: u32) -> AttemptKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(site_key).expect("HMAC takes any key length");
        mac.update(b"pilotq attempt key v1");
        mac.update(&job.cluster.0.to_be_bytes());
        mac.update(&job.proc.to_be_bytes());
        mac.update(&attempt.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut k = [0u8; 16];
        k.copy_from_slice(&full[..16]);
        AttemptKey(k)
    }

    /// Equal, in time that does not depend on where they differ.
    pub fn matches(&self, other: &AttemptKey) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for AttemptKey {
    // Never printed whole: a log line must not hand the proof to a reader.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttemptKey({:02x}…)", self.0[0])
    }
}

impl Serialize for AttemptKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for AttemptKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = serde_bytes::ByteBuf::deserialize(d)?;
        let k: [u8; 16] = b
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(b.len(), &"16 bytes"))?;
        Ok(AttemptKey(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_belongs_to_one_attempt_under_one_site_key() {
        let k = AttemptKey::derive(b"site", JobId::new(7, 3), 2);
        assert!(k.matches(&AttemptKey::derive(b"site", JobId::new(7, 3), 2)));
        assert!(!k.matches(&AttemptKey::derive(b"site", JobId::new(7, 3), 3)));
        assert!(!k.matches(&AttemptKey::derive(b"site", JobId::new(7, 4), 2)));
        assert!(!k.matches(&AttemptKey::derive(b"other", JobId::new(7, 3), 2)));
        assert!(!format!("{k:?}").contains(&format!("{:02x}{:02x}", k.0[0], k.0[1])));
    }

    #[test]
    fn a_key_round_trips_as_bytes_and_a_wrong_length_is_refused() {
        let k = AttemptKey::derive(b"site", JobId::new(1, 0), 1);
        let b = rmp_serde::to_vec_named(&Some(k)).unwrap();
        assert_eq!(b.len(), 18, "msgpack bin 8: 2 bytes of header, 16 of key");
        let back: Option<AttemptKey> = rmp_serde::from_slice(&b).unwrap();
        assert_eq!(back, Some(k));
        let short = rmp_serde::to_vec(&serde_bytes::Bytes::new(&[1, 2, 3])).unwrap();
        assert!(rmp_serde::from_slice::<AttemptKey>(&short).is_err());
    }
}
