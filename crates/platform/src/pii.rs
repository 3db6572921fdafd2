//! Personal data at rest (R-CR-11): authenticated encryption of single fields and a keyed
//! blind index for equality lookups without the plaintext.
//!
//! **Sealed format, version 1** (the bytes stored in a `bytea` column):
//!
//! ```text
//! 0x01 | key id length n (1..=16) | key id (n ASCII bytes) | nonce (24) | ciphertext | tag (16)
//! ```
//!
//! The cipher is XChaCha20-Poly1305 with a random 192-bit nonce per value (random nonces are
//! safe at any volume this programme will see). The associated data is the header (version
//! and key id) followed by a caller-chosen *context*, e.g. the column and the row id, so a
//! value cannot be moved to another column or row, nor its key id rewritten, without failing
//! authentication.
//!
//! **Keys.** `PII_KEYS` lists `id:base64(32 bytes)` pairs separated by commas. The first is
//! current (every new value is sealed with it); all of them open values. Rotation: put a new
//! key first and keep the old ones until every value sealed with them has been re-sealed.
//! `PII_INDEX_KEY` (base64, 32 bytes) keys the blind index. It is separate because the index
//! must not change when the encryption key rotates: rows are found by it. Changing it means
//! recomputing every index column.
//!
//! **Blind index.** HMAC-SHA256 under a key derived from `PII_INDEX_KEY`, over a domain label
//! and the value. Equal values give equal indexes, so it supports `where x_idx = $1` and
//! unique constraints; without the key it reveals nothing but equality. With the key, values
//! from a small space (a district's resident IDs are about 10^7 candidates) can be recovered
//! by enumeration: the index key is as secret as the encryption keys.

use std::fmt;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The only sealed format so far.
pub const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const MAX_KEY_ID: usize = 16;
const KEY_LEN: usize = 32;

/// Development keys used when `PII_KEYS` and `PII_INDEX_KEY` are unset (with a warning).
/// They decode to `fupin-dev-pii-key-not-for-prod!!` and `fupin-dev-index-key-not-for-prod`.
pub const DEV_PII_KEYS: &str = "dev:ZnVwaW4tZGV2LXBpaS1rZXktbm90LWZvci1wcm9kISE=";
pub const DEV_PII_INDEX_KEY: &str = "ZnVwaW4tZGV2LWluZGV4LWtleS1ub3QtZm9yLXByb2Q=";

/// Why a sealed value could not be opened. Never mapped to an empty value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed value is truncated or malformed")]
    Malformed,
    #[error("sealed value has unknown format version {0}")]
    UnknownVersion(u8),
    #[error("sealed value names key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("sealed value failed authentication (tampered, wrong key or wrong context)")]
    Forged,
    #[error("opened value is not UTF-8")]
    NotUtf8,
}

/// Why the key configuration was refused (at start-up).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no encryption key configured")]
    NoKeys,
    #[error("key entry {0} is not `id:base64`")]
    NotIdColonKey(usize),
    #[error("key id {0:?} must be 1 to 16 characters of A-Z, a-z, 0-9, '-' or '_'")]
    BadKeyId(String),
    #[error("key id {0:?} is listed twice")]
    DuplicateKeyId(String),
    #[error("key {0:?} is not base64 of exactly 32 bytes")]
    BadKey(String),
}

struct SealingKey {
    id: String,
    aead: XChaCha20Poly1305,
}

/// Seals and opens personal data; computes blind indexes. Cheap to share behind an `Arc`.
#[derive(Clone)]
pub struct PiiCipher {
    /// The first is current.
    keys: std::sync::Arc<Vec<SealingKey>>,
    index: Hmac<Sha256>,
    /// A check value of each key ([`KeyCheck`]).
    checks: std::sync::Arc<Vec<KeyCheck>>,
}

/// What a key is for, as [`KeyCheck`] records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// A key of `PII_KEYS`, by its id.
    Seal,
    /// `PII_INDEX_KEY`.
    Index,
}

impl KeyUse {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seal => "seal",
            Self::Index => "index",
        }
    }
}

/// A one-way check value of a key (HMAC-SHA256 of a fixed label under the key), which a
/// database keeps for each key that wrote to it: a key id given other material, or another
/// index key, is then told at start instead of failing every read (or, for the index, missing
/// every lookup: a household's blacklist entry no longer found).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCheck {
    pub key_use: KeyUse,
    /// The key's id; empty for the index key.
    pub key_id: String,
    pub value: [u8; 32],
}

fn check_value(key: &[u8; KEY_LEN]) -> [u8; 32] {
    let mut mac = hmac_sha256(key);
    mac.update(b"fupin pii key check v1");
    mac.finalize().into_bytes().into()
}

impl fmt::Debug for PiiCipher {
    /// Key ids only: key material is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PiiCipher")
            .field(
                "keys",
                &self.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            )
            .field("index", &"<redacted>")
            .finish()
    }
}

impl PiiCipher {
    /// Keys as `(id, key)`, current first, and the blind-index key.
    pub fn new(
        keys: Vec<(String, [u8; KEY_LEN])>,
        index_key: [u8; KEY_LEN],
    ) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        let mut sealing: Vec<SealingKey> = Vec::with_capacity(keys.len());
        let mut checks = vec![KeyCheck {
            key_use: KeyUse::Index,
            key_id: String::new(),
            value: check_value(&index_key),
        }];
        for (id, key) in keys {
            let valid = (1..=MAX_KEY_ID).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(KeyError::BadKeyId(id));
            }
            if sealing.iter().any(|k| k.id == id) {
                return Err(KeyError::DuplicateKeyId(id));
            }
            checks.push(KeyCheck {
                key_use: KeyUse::Seal,
                key_id: id.clone(),
                value: check_value(&key),
            });
            sealing.push(SealingKey {
                aead: XChaCha20Poly1305::new(&key.into()),
                id,
            });
        }
        // The configured key is not used directly, so the index scheme has its own version.
        let mut derive = hmac_sha256(&index_key);
        derive.update(b"fupin pii blind index v1");
        let derived = derive.finalize().into_bytes();
        Ok(Self {
            keys: std::sync::Arc::new(sealing),
            index: hmac_sha256(&derived),
            checks: std::sync::Arc::new(checks),
        })
    }

    /// The check value of the index key and of each sealing key.
    pub fn key_checks(&self) -> &[KeyCheck] {
        &self.checks
    }

    /// Parses `PII_KEYS` (`k2:<base64>,k1:<base64>`) and `PII_INDEX_KEY` (`<base64>`).
    pub fn from_config(keys: &str, index_key: &str) -> Result<Self, KeyError> {
        let mut parsed = Vec::new();
        for (i, entry) in keys.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (id, key) = entry.split_once(':').ok_or(KeyError::NotIdColonKey(i))?;
            parsed.push((id.trim().to_owned(), key_bytes(id, key)?));
        }
        Self::new(parsed, key_bytes("index", index_key)?)
    }

    /// The development keys ([`DEV_PII_KEYS`], [`DEV_PII_INDEX_KEY`]).
    pub fn development() -> Self {
        Self::from_config(DEV_PII_KEYS, DEV_PII_INDEX_KEY).expect("the development keys parse")
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `plaintext` with the current key, bound to `context` (e.g. column and row id).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let header = header(&key.id);
        // The thread's CSPRNG (ChaCha12, seeded and periodically reseeded from the OS): a
        // getrandom system call per value cost more than the sealing itself. It is not reseeded
        // after fork(); the services never fork.
        let mut nonce = XNonce::default();
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        let aad = [header.as_slice(), context].concat();
        let ciphertext = key
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any input that fits in memory");
        let mut out = header;
        out.reserve(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn seal_str(&self, context: &[u8], plaintext: &str) -> Vec<u8> {
        self.seal(context, plaintext.as_bytes())
    }

    /// Opens a value sealed with any configured key under the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let (&version, rest) = sealed.split_first().ok_or(OpenError::Malformed)?;
        if version != FORMAT_V1 {
            return Err(OpenError::UnknownVersion(version));
        }
        let (&id_len, rest) = rest.split_first().ok_or(OpenError::Malformed)?;
        let id_len = usize::from(id_len);
        if id_len == 0 || id_len > MAX_KEY_ID || rest.len() < id_len + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| OpenError::Malformed)?);
        let key = self
            .keys
            .iter()
            .find(|k| k.id.as_bytes() == id)
            .ok_or_else(|| OpenError::UnknownKey(String::from_utf8_lossy(id).into_owned()))?;
        let aad = [&sealed[..2 + id_len], context].concat();
        key.aead
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Forged)
    }

    pub fn open_str(&self, context: &[u8], sealed: &[u8]) -> Result<String, OpenError> {
        String::from_utf8(self.open(context, sealed)?).map_err(|_| OpenError::NotUtf8)
    }

    /// The first bytes of every value sealed with the current key.
    pub fn current_header(&self) -> Vec<u8> {
        header(self.current_key_id())
    }

    /// The first bytes of every value sealed with the configured key `key_id` (to find them in
    /// SQL: `substring(col from 1 for length($1)) = $1`); None for a key not configured.
    pub fn header_of(&self, key_id: &str) -> Option<Vec<u8>> {
        self.keys
            .iter()
            .any(|k| k.id == key_id)
            .then(|| header(key_id))
    }

    /// `sealed` sealed again with the current key under the same `context`, or `None` when it
    /// already is (after a key rotation, so that the old key can be retired). The value is
    /// opened, and so checked, as a read would.
    pub fn reseal(&self, context: &[u8], sealed: &[u8]) -> Result<Option<Vec<u8>>, OpenError> {
        if self.key_id_of(sealed)? == self.current_key_id() {
            return Ok(None);
        }
        let plaintext = self.open(context, sealed)?;
        Ok(Some(self.seal(context, &plaintext)))
    }

    /// [`PiiCipher::reseal`] for a batch of rows, each value under its row's `context`: the rows
    /// whose value changed, with the value read and the new one. A value that does not open is
    /// left out, counted in `done.failed` and logged with `what` and the row's key.
    pub fn reseal_rows<'r, K: fmt::Debug>(
        &self,
        what: &str,
        rows: &'r [(K, Vec<u8>)],
        context: impl Fn(&K) -> Vec<u8>,
        done: &mut Resealed,
    ) -> Vec<(&'r K, &'r [u8], Vec<u8>)> {
        let mut changed = Vec::new();
        for (key, old) in rows {
            match self.reseal(&context(key), old) {
                Ok(Some(new)) => changed.push((key, old.as_slice(), new)),
                Ok(None) => {}
                Err(e) => {
                    done.failed += 1;
                    tracing::warn!(what, row = ?key, error = %e, "a sealed value cannot be re-sealed");
                }
            }
        }
        changed
    }

    /// The id of the key `sealed` was sealed with (for a re-sealing job after rotation).
    pub fn key_id_of<'a>(&self, sealed: &'a [u8]) -> Result<&'a str, OpenError> {
        match sealed {
            [FORMAT_V1, n, rest @ ..] if (1..=MAX_KEY_ID).contains(&usize::from(*n)) => rest
                .get(..usize::from(*n))
                .and_then(|id| std::str::from_utf8(id).ok())
                .ok_or(OpenError::Malformed),
            [FORMAT_V1, ..] | [] => Err(OpenError::Malformed),
            [v, ..] => Err(OpenError::UnknownVersion(*v)),
        }
    }

    /// Keyed blind index of `value` within `domain` (e.g. `subject-id`): 32 bytes, equal for
    /// equal inputs, independent of the encryption keys and their rotation.
    pub fn blind_index(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        let mut mac = self.index.clone();
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

/// What a re-sealing pass did (key rotation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Values now sealed with the current key.
    pub resealed: u64,
    /// Values that did not open (a key no longer configured, a damaged value): left as they
    /// are, and logged.
    pub failed: u64,
}

impl std::ops::AddAssign for Resealed {
    fn add_assign(&mut self, other: Self) {
        self.resealed += other.resealed;
        self.failed += other.failed;
    }
}

fn header(key_id: &str) -> Vec<u8> {
    let mut h = Vec::with_capacity(2 + key_id.len());
    h.push(FORMAT_V1);
    h.push(key_id.len() as u8);
    h.extend_from_slice(key_id.as_bytes());
    h
}

fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn key_bytes(id: &str, b64: &str) -> Result<[u8; KEY_LEN], KeyError> {
    BASE64
        .decode(b64.trim())
        .ok()
        .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok())
        .ok_or_else(|| KeyError::BadKey(id.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(byte: u8) -> String {
        BASE64.encode([byte; KEY_LEN])
    }

    fn cipher(keys: &[(&str, u8)], index: u8) -> PiiCipher {
        let keys = keys
            .iter()
            .map(|(id, b)| format!("{id}:{}", key(*b)))
            .collect::<Vec<_>>()
            .join(",");
        PiiCipher::from_config(&keys, &key(index)).expect("valid keys")
    }

    const CTX: &[u8] = b"applications.applicant_name\x00row-1";

    #[test]
    fn round_trip() {
        let c = cipher(&[("k1", 1)], 9);
        let sealed = c.seal_str(CTX, "王建国");
        assert_eq!(c.open_str(CTX, &sealed).unwrap(), "王建国");
        assert_eq!(c.open_str(CTX, &c.seal_str(CTX, "")).unwrap(), "");
    }

    #[test]
    fn sealed_value_carries_version_and_key_id_but_not_the_plaintext() {
        let c = cipher(&[("k1", 1)], 9);
        let sealed = c.seal_str(CTX, "13800138000");
        assert_eq!(&sealed[..4], &[FORMAT_V1, 2, b'k', b'1']);
        assert_eq!(sealed.len(), 4 + NONCE_LEN + 11 + TAG_LEN);
        assert!(!sealed.windows(11).any(|w| w == b"13800138000"));
        assert_eq!(c.key_id_of(&sealed), Ok("k1"));
        // Random nonces: sealing twice gives different bytes.
        assert_ne!(sealed, c.seal_str(CTX, "13800138000"));
    }

    #[test]
    fn tampering_is_detected_anywhere() {
        let c = cipher(&[("k1", 1), ("k0", 2)], 9);
        let sealed = c.seal_str(CTX, "41031119800501007X");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                c.open(CTX, &bad).is_err(),
                "flipping byte {i} goes unnoticed"
            );
        }
        // Rewriting the key id to another configured key fails authentication.
        let mut other = sealed.clone();
        other[3] = b'0';
        assert_eq!(c.open(CTX, &other), Err(OpenError::Forged));
        assert_eq!(
            c.open(CTX, &sealed[..sealed.len() - 1]),
            Err(OpenError::Forged)
        );
        assert_eq!(c.open(CTX, &sealed[..20]), Err(OpenError::Malformed));
        assert_eq!(c.open(CTX, &[]), Err(OpenError::Malformed));
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert_eq!(c.open(CTX, &v2), Err(OpenError::UnknownVersion(2)));
    }

    #[test]
    fn another_context_does_not_open() {
        let c = cipher(&[("k1", 1)], 9);
        let sealed = c.seal_str(CTX, "王建国");
        assert_eq!(
            c.open(b"applications.applicant_name\x00row-2", &sealed),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn wrong_key_does_not_open() {
        let sealed = cipher(&[("k1", 1)], 9).seal_str(CTX, "王建国");
        // Same id, other key material.
        assert_eq!(
            cipher(&[("k1", 3)], 9).open(CTX, &sealed),
            Err(OpenError::Forged)
        );
        // A key id that is not configured.
        assert_eq!(
            cipher(&[("k2", 1)], 9).open(CTX, &sealed),
            Err(OpenError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn old_values_open_after_rotation_and_new_ones_use_the_new_key() {
        let before = cipher(&[("k1", 1)], 9);
        let old = before.seal_str(CTX, "王建国");
        let after = cipher(&[("k2", 2), ("k1", 1)], 9);
        assert_eq!(after.current_key_id(), "k2");
        assert_eq!(after.open_str(CTX, &old).unwrap(), "王建国");
        let new = after.seal_str(CTX, "李四");
        assert_eq!(after.key_id_of(&new), Ok("k2"));
        // Until the old key is retired, and then only until then.
        assert_eq!(
            cipher(&[("k2", 2)], 9).open(CTX, &old),
            Err(OpenError::UnknownKey("k1".into()))
        );
        // The blind index does not move with the encryption key.
        assert_eq!(
            before.blind_index("subject-id", b"41031119800501007X"),
            after.blind_index("subject-id", b"41031119800501007X")
        );
    }

    #[test]
    fn reseal_moves_a_value_to_the_current_key_under_the_same_context() {
        let before = cipher(&[("k1", 1)], 9);
        let old = before.seal(b"col\0row", b"13800000000");
        let after = cipher(&[("k2", 2), ("k1", 1)], 9);
        let new = after
            .reseal(b"col\0row", &old)
            .unwrap()
            .expect("sealed with k1");
        assert_eq!(after.key_id_of(&new), Ok("k2"));
        assert!(new.starts_with(&after.current_header()));
        assert!(old.starts_with(&after.header_of("k1").unwrap()));
        assert_eq!(after.header_of("k3"), None);
        assert_eq!(after.reseal(b"col\0row", &new), Ok(None), "already current");
        // Once re-sealed, the old key can go.
        let retired = cipher(&[("k2", 2)], 9);
        assert_eq!(retired.open(b"col\0row", &new).unwrap(), b"13800000000");
        // A value that does not open is not re-sealed.
        assert_eq!(
            after.reseal(b"other\0row", &old),
            Err(OpenError::Forged),
            "bound to its context"
        );
        assert!(matches!(
            retired.reseal(b"col\0row", &old),
            Err(OpenError::UnknownKey(_))
        ));
    }

    #[test]
    fn blind_index_is_stable_and_depends_on_key_domain_and_value() {
        let c = cipher(&[("k1", 1)], 9);
        let a = c.blind_index("subject-id", b"41031119800501007X");
        assert_eq!(a, c.blind_index("subject-id", b"41031119800501007X"));
        assert_eq!(
            a,
            cipher(&[("k9", 7)], 9).blind_index("subject-id", b"41031119800501007X")
        );
        assert_ne!(a, c.blind_index("subject-id", b"410311198005010088"));
        assert_ne!(a, c.blind_index("phone", b"41031119800501007X"));
        assert_ne!(
            a,
            cipher(&[("k1", 1)], 8).blind_index("subject-id", b"41031119800501007X")
        );
        // Pinned: a change to the index scheme would orphan every stored index. Recomputed
        // outside Rust as HMAC(HMAC(key, "fupin pii blind index v1"), be64(len) | domain | value).
        let pinned: String = PiiCipher::development()
            .blind_index("subject-id", b"41031119800501007X")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            pinned,
            "74ca1ab4ef220e0dc63077d6e68040cfa73d0b2df04e62eff0c5a74e158f3a7d"
        );
    }

    #[test]
    fn key_configuration_is_checked() {
        let k = key(1);
        let ok =
            |keys: &str| PiiCipher::from_config(keys, &k).map(|c| c.current_key_id().to_owned());
        assert_eq!(ok(&format!("k2:{k}, k1:{}", key(2))), Ok("k2".into()));
        assert_eq!(ok(""), Err(KeyError::NoKeys));
        assert_eq!(ok(&k), Err(KeyError::NotIdColonKey(0)));
        assert_eq!(
            ok(&format!("k1:{k},k1:{k}")),
            Err(KeyError::DuplicateKeyId("k1".into()))
        );
        assert_eq!(
            ok(&format!("a b:{k}")),
            Err(KeyError::BadKeyId("a b".into()))
        );
        assert_eq!(ok(&format!(":{k}")), Err(KeyError::BadKeyId(String::new())));
        assert_eq!(ok("k1:c2hvcnQ="), Err(KeyError::BadKey("k1".into())));
        assert_eq!(ok("k1:not base64!"), Err(KeyError::BadKey("k1".into())));
        assert_eq!(
            PiiCipher::from_config(&format!("k1:{k}"), "c2hvcnQ=").map(|_| ()),
            Err(KeyError::BadKey("index".into()))
        );
        assert_eq!(PiiCipher::development().current_key_id(), "dev");
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let shown = format!("{:?}", cipher(&[("k2", 2), ("k1", 1)], 9));
        assert!(shown.contains("k2") && shown.contains("k1"), "{shown}");
        assert!(!shown.contains(&key(2)), "{shown}");
    }

    proptest! {
        #[test]
        fn any_text_round_trips(
            text in ".*",
            context in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let c = cipher(&[("k2", 2), ("k1", 1)], 9);
            let sealed = c.seal_str(&context, &text);
            prop_assert_eq!(c.open_str(&context, &sealed).unwrap(), text);
        }

        #[test]
        fn any_bit_flip_is_refused(
            text in ".{0,40}",
            at in any::<prop::sample::Index>(),
            bit in 0..8u8,
        ) {
            let c = cipher(&[("k1", 1)], 9);
            let mut sealed = c.seal_str(CTX, &text);
            let i = at.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(c.open(CTX, &sealed).is_err());
        }
    }
}
