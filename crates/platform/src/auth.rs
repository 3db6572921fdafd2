//! Bearer-token authentication. Every RPC of a business service carries a JWT whose claims give
//! the caller's role, organisation area and, for banks, the bank id. The interceptor turns a
//! valid token into a [`Caller`] in the request extensions; anything else is `Unauthenticated`.
//! Area scoping is decided by each service.
//!
//! Tokens are verified with [`TokenKeys`]: an HS256 secret shared with whoever issues tokens
//! (`AUTH_JWT_SECRET`), or the public keys of an issuer that alone holds the private key
//! (`AUTH_JWT_PUBLIC_KEY_FILE`: Ed25519, ECDSA P-256/P-384 or RSA), so that a service, or anyone
//! who reads its configuration, cannot sign tokens. Both may be configured while moving from
//! one to the other.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use fupin_kernel::AreaCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Village service department (服务部): area is a village.
    VillageStaff,
    /// Town service station (服务站): area is a town.
    TownStaff,
    /// District Financial Poverty-Alleviation Service Center: area is the district.
    DistrictStaff,
    /// Partner bank core system: `bank_id` required, area is the district it lends in.
    Bank,
    /// Platform operations (deadline scans, test clock); no business actions.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::VillageStaff => "village_staff",
            Role::TownStaff => "town_staff",
            Role::DistrictStaff => "district_staff",
            Role::Bank => "bank",
            Role::Operator => "operator",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub area: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<String>,
    pub exp: i64,
    /// When it was issued: required, since the services bound a token's lifetime (`exp` −
    /// `iat`, [`TokenKeys::lifetime_at_most`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Who issued the token; checked when the services expect one (`AUTH_JWT_ISSUER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Whom it is for, one or several (RFC 7519 allows a string or a list; identity providers
    /// send either); checked when the services expect one (`AUTH_JWT_AUDIENCE`). A token
    /// naming an audience is refused by services that expect none.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aud: Vec<String>,
}

/// The authenticated caller of an RPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub role: Role,
    pub area: AreaCode,
    pub bank_id: Option<String>,
}

impl Caller {
    /// True when the caller's organisation area contains `area` (staff see only their area).
    pub fn covers(&self, area: &AreaCode) -> bool {
        self.area.contains(area)
    }
}

/// The keys tokens are verified with, and the longest lifetime a token may have.
#[derive(Clone)]
pub struct TokenKeys {
    keys: Vec<VerifyingKey>,
    /// Seconds from `iat` to `exp` a token may span at most.
    max_lifetime: i64,
}

/// A token's longest lifetime unless configured (`AUTH_JWT_MAX_LIFETIME_HOURS`): a day, so a
/// token copied from a log or a proxy stops working within one, whatever `exp` its issuer
/// wrote.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 24 * 3600;
/// The longest lifetime any configuration accepts: a year.
pub const MAX_LIFETIME_LIMIT_SECS: i64 = 8760 * 3600;

#[derive(Clone)]
struct VerifyingKey {
    key: DecodingKey,
    validation: Validation,
    /// What it is, for logs: `HS256`, `EdDSA`, `ECDSA`, `RSA`.
    kind: &'static str,
}

impl TokenKeys {
    /// The shared HS256 secret.
    pub fn hs256(secret: &str) -> Self {
        Self {
            keys: vec![VerifyingKey {
                key: DecodingKey::from_secret(secret.as_bytes()),
                validation: validation(&[Algorithm::HS256]),
                kind: "HS256",
            }],
            max_lifetime: DEFAULT_MAX_LIFETIME_SECS,
        }
    }

    /// Public keys in PEM (`-----BEGIN PUBLIC KEY-----`, one block per key; RSA also as
    /// `RSA PUBLIC KEY`): Ed25519 verifies EdDSA tokens, an ECDSA P-256 or P-384 key ES256 or
    /// ES384 ones, an RSA key RS256/384/512 and PS256/384/512 ones. Several keys let an issuer
    /// rotate: tokens signed with the old key stay valid until the old key is removed.
    pub fn public_pem(pem: &str) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for (i, block) in pem_blocks(pem)?.iter().enumerate() {
            let (key, algorithms, kind) =
                public_key(block).map_err(|e| anyhow::anyhow!("key {}: {e}", i + 1))?;
            keys.push(VerifyingKey {
                key,
                validation: validation(algorithms),
                kind,
            });
        }
        anyhow::ensure!(!keys.is_empty(), "no PEM public key found");
        Ok(Self {
            keys,
            max_lifetime: DEFAULT_MAX_LIFETIME_SECS,
        })
    }

    /// Tokens must name `issuer` (`iss`) and `audience` (`aud`), where given: an issuer's key
    /// also signs tokens for other systems, which must not be accepted here.
    pub fn expecting(mut self, issuer: Option<&str>, audience: Option<&str>) -> Self {
        for k in &mut self.keys {
            if let Some(iss) = issuer {
                k.validation.set_issuer(&[iss]);
                k.validation.required_spec_claims.insert("iss".to_owned());
            }
            if let Some(aud) = audience {
                k.validation.set_audience(&[aud]);
                k.validation.required_spec_claims.insert("aud".to_owned());
            }
        }
        self
    }

    /// Tokens must name when they were issued (`iat`, not ahead of the clock beyond the
    /// leeway) and expire at most `secs` after it. Without a bound, a token its issuer wrote
    /// to expire in years stays valid that long wherever it is copied, and only a key
    /// rotation would stop it.
    pub fn lifetime_at_most(mut self, secs: i64) -> Self {
        self.max_lifetime = secs;
        self
    }

    /// These keys and `other`'s, with the shorter of the two lifetime bounds.
    pub fn and(mut self, other: TokenKeys) -> Self {
        self.keys.extend(other.keys);
        self.max_lifetime = self.max_lifetime.min(other.max_lifetime);
        self
    }

    /// The kinds of key, for logs: `HS256`, `EdDSA, RSA`.
    pub fn describe(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.kind)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Debug for TokenKeys {
    /// The kinds only: never a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKeys({})", self.describe())
    }
}

/// The checks every token gets, whatever signed it.
fn validation(algorithms: &[Algorithm]) -> Validation {
    let mut validation = Validation::new(algorithms[0]);
    validation.algorithms = algorithms.to_vec();
    validation.leeway = LEEWAY_SECS as u64;
    // A token not valid yet (`nbf` ahead, beyond the leeway) is refused like an expired one.
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation
}

const ED25519: &str = "1.3.101.112";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSA_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// One PEM public key, with the algorithms it verifies and its kind.
fn public_key(block: &str) -> anyhow::Result<(DecodingKey, &'static [Algorithm], &'static str)> {
    let (label, der) =
        pem_rfc7468::decode_vec(block.as_bytes()).map_err(|e| anyhow::anyhow!("not PEM ({e})"))?;
    match label {
        // PKCS#1, as `openssl rsa -RSAPublicKey_out` writes it.
        "RSA PUBLIC KEY" => Ok((rsa_key(&der)?, RSA_ALGORITHMS, "RSA")),
        "PUBLIC KEY" => {
            let info = pkcs8::SubjectPublicKeyInfoRef::try_from(der.as_slice())
                .map_err(|e| anyhow::anyhow!("not a SubjectPublicKeyInfo ({e})"))?;
            let bits = info
                .subject_public_key
                .as_bytes()
                .ok_or_else(|| anyhow::anyhow!("the key's bit string is not whole bytes"))?;
            match key_kind(&info.algorithm)? {
                KeyKind::Ed25519 => {
                    let point: &[u8; 32] = bits.try_into().map_err(|_| {
                        anyhow::anyhow!("an Ed25519 key is 32 bytes, not {}", bits.len())
                    })?;
                    ed25519_dalek::VerifyingKey::from_bytes(point)
                        .map_err(|e| anyhow::anyhow!("not an Ed25519 point ({e})"))?;
                    Ok((DecodingKey::from_ed_der(bits), &[Algorithm::EdDSA], "EdDSA"))
                }
                KeyKind::Ec(algorithm) => {
                    let not_on_curve = |e: p256::elliptic_curve::Error| {
                        anyhow::anyhow!("not a point of the key's curve ({e})")
                    };
                    let algorithms: &'static [Algorithm] = if algorithm == Algorithm::ES256 {
                        p256::PublicKey::from_sec1_bytes(bits).map_err(not_on_curve)?;
                        &[Algorithm::ES256]
                    } else {
                        p384::PublicKey::from_sec1_bytes(bits).map_err(not_on_curve)?;
                        &[Algorithm::ES384]
                    };
                    Ok((DecodingKey::from_ec_der(bits), algorithms, "ECDSA"))
                }
                KeyKind::Rsa => Ok((rsa_key(bits)?, RSA_ALGORITHMS, "RSA")),
            }
        }
        other => anyhow::bail!("a {other:?} PEM block is not a public key"),
    }
}

/// What a key is, from its `AlgorithmIdentifier` (public and private keys alike).
enum KeyKind {
    Ed25519,
    /// ES256 for P-256, ES384 for P-384.
    Ec(Algorithm),
    Rsa,
}

fn key_kind(algorithm: &pkcs8::AlgorithmIdentifierRef<'_>) -> anyhow::Result<KeyKind> {
    Ok(match algorithm.oid.to_string().as_str() {
        ED25519 => KeyKind::Ed25519,
        EC_PUBLIC_KEY => {
            let curve = algorithm
                .parameters_oid()
                .map_err(|e| anyhow::anyhow!("an EC key without its curve ({e})"))?;
            KeyKind::Ec(match curve.to_string().as_str() {
                P256 => Algorithm::ES256,
                P384 => Algorithm::ES384,
                other => anyhow::bail!("EC curve {other} is not P-256 or P-384"),
            })
        }
        RSA_ENCRYPTION => KeyKind::Rsa,
        other => anyhow::bail!("key algorithm {other} is not Ed25519, ECDSA or RSA"),
    })
}

/// Shortest and longest RSA keys accepted: shorter ones are weak (NIST SP 800-131A), longer
/// ones are refused by the `rsa` crate at verification, which would refuse every token.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// An RSA public key in PKCS#1 DER, checked.
fn rsa_key(pkcs1: &[u8]) -> anyhow::Result<DecodingKey> {
    use rsa::pkcs1::{DecodeRsaPublicKey, der::Decode};
    // The size first, from the structure alone: the `rsa` crate refuses a key over 4096 bits
    // as malformed, which would not say what is wrong with it.
    let raw = rsa::pkcs1::RsaPublicKey::from_der(pkcs1)
        .map_err(|e| anyhow::anyhow!("not an RSA public key ({e})"))?;
    let modulus = raw.modulus.as_bytes();
    let bits = (modulus.len() * 8)
        .saturating_sub(modulus.first().map_or(0, |b| b.leading_zeros() as usize));
    anyhow::ensure!(
        RSA_BITS.contains(&bits),
        "an RSA key of {bits} bits; 2048 to 4096 are accepted"
    );
    rsa::RsaPublicKey::from_pkcs1_der(pkcs1)
        .map_err(|e| anyhow::anyhow!("not an RSA public key ({e})"))?;
    Ok(DecodingKey::from_rsa_der(pkcs1))
}

/// A key that signs tokens: the HS256 secret, or the private key of an issuer whose public
/// key the services hold ([`TokenKeys::public_pem`]).
pub struct SigningKey {
    key: EncodingKey,
    algorithm: Algorithm,
}

impl SigningKey {
    pub fn hs256(secret: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            algorithm: Algorithm::HS256,
        }
    }

    /// A private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey` writes
    /// it) or an RSA key in PKCS#1 (`RSA PRIVATE KEY`): Ed25519 signs EdDSA, ECDSA P-256
    /// ES256, P-384 ES384, RSA RS256.
    pub fn private_pem(pem: &str) -> anyhow::Result<Self> {
        let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes())
            .map_err(|e| anyhow::anyhow!("not PEM ({e})"))?;
        let (key, algorithm) = match label {
            "RSA PRIVATE KEY" => (EncodingKey::from_rsa_der(&der), Algorithm::RS256),
            "PRIVATE KEY" => {
                let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| anyhow::anyhow!("not a PKCS#8 private key ({e})"))?;
                match key_kind(&info.algorithm)? {
                    KeyKind::Ed25519 => (EncodingKey::from_ed_der(&der), Algorithm::EdDSA),
                    KeyKind::Ec(algorithm) => (EncodingKey::from_ec_der(&der), algorithm),
                    // The PKCS#8 envelope holds the PKCS#1 key jsonwebtoken signs with.
                    KeyKind::Rsa => (
                        EncodingKey::from_rsa_der(info.private_key),
                        Algorithm::RS256,
                    ),
                }
            }
            other => anyhow::bail!(
                "a {other:?} PEM block is not a PKCS#8 private key (convert it with `openssl pkey`)"
            ),
        };
        Ok(Self { key, algorithm })
    }

    /// The algorithm its tokens name in their header.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.key)
    }
}

/// The PEM blocks of `text`, each from its `-----BEGIN` line to its `-----END` line.
fn pem_blocks(text: &str) -> anyhow::Result<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            // A key cut short before the next one must not load as one key fewer either: the
            // tokens it signs would all be refused without a word at start.
            if current.is_some() {
                anyhow::bail!("key {} has no -----END line", blocks.len() + 1);
            }
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
    }
    if current.is_some() {
        // A key pasted in part must not load as one key fewer.
        anyhow::bail!("key {} has no -----END line", blocks.len() + 1);
    }
    Ok(blocks)
}

#[derive(Clone)]
pub struct JwtVerifier {
    keys: TokenKeys,
    /// Tokens already verified, by their SHA-256, with the caller and expiry. A bank's core
    /// system or a staff client sends one token on every call until it renews it; checking the
    /// signature and parsing the claims each time was about 5% of intake's CPU per submission.
    /// A hit is still refused once the token has expired. Only valid tokens are kept.
    verified: Arc<Mutex<Verified>>,
    /// The areas this deployment serves ([`Self::serving`]); None: any well-formed code.
    areas: Option<Arc<HashSet<AreaCode>>>,
    /// The banks this deployment lends through ([`Self::banks`]); None: any readable id.
    banks: Option<Arc<HashSet<String>>>,
}

/// SHA-256 of a token -> the caller it names and its `exp`.
type Verified = HashMap<[u8; 32], (Caller, i64)>;

/// Seconds of clock skew allowed on `exp`.
const LEEWAY_SECS: i64 = 30;
/// Verified tokens remembered at most; the cache starts over when full.
const VERIFIED_CAPACITY: usize = 10_000;

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtVerifier({})", self.keys.describe())
    }
}

impl JwtVerifier {
    pub fn new(keys: TokenKeys) -> Self {
        Self {
            keys,
            verified: Arc::default(),
            areas: None,
            banks: None,
        }
    }

    /// Refuses tokens whose area is not one of `areas` (the district, its towns and villages):
    /// a token for another district, or for a town or village the district does not have, is
    /// not a caller of this deployment, whatever else it may do (a district token of another
    /// district could run the deadline scan; a bank's reads are scoped by its bank id alone).
    pub fn serving<'a>(mut self, areas: impl IntoIterator<Item = &'a AreaCode>) -> Self {
        self.areas = Some(Arc::new(areas.into_iter().cloned().collect()));
        self
    }

    /// Refuses bank tokens whose `bank_id` is not one of `banks` (the partner banks): a token
    /// naming any other bank is no caller of this deployment, even if it would only ever see
    /// empty lists.
    pub fn banks<'a>(mut self, banks: impl IntoIterator<Item = &'a str>) -> Self {
        self.banks = Some(Arc::new(banks.into_iter().map(str::to_owned).collect()));
        self
    }

    pub fn hs256(secret: &str) -> Self {
        Self::new(TokenKeys::hs256(secret))
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    /// [`Self::verify`] at `now` (Unix seconds) for tokens already verified; a token seen for
    /// the first time is checked against the system clock by `jsonwebtoken`.
    fn verify_at(&self, token: &str, now: i64) -> Result<Caller, Status> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((caller, exp)) = self.cache().get(&digest) {
            if *exp >= now - LEEWAY_SECS {
                return Ok(caller.clone());
            }
            return Err(Status::unauthenticated(
                "invalid bearer token: ExpiredSignature",
            ));
        }
        let (caller, exp) = self.verify_uncached(token, now)?;
        if let Some(areas) = &self.areas
            && !areas.contains(&caller.area)
        {
            return Err(Status::unauthenticated(crate::error::bounded(format!(
                "token area {} is not an area this service serves",
                caller.area.as_str()
            ))));
        }
        if let (Some(banks), Role::Bank, Some(bank)) = (&self.banks, caller.role, &caller.bank_id)
            && !banks.contains(bank)
        {
            return Err(Status::unauthenticated(crate::error::bounded(format!(
                "token bank_id {bank:.64} is not a partner bank of this service"
            ))));
        }
        let mut cache = self.cache();
        if cache.len() >= VERIFIED_CAPACITY {
            cache.clear();
        }
        cache.insert(digest, (caller.clone(), exp));
        Ok(caller)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Verified> {
        // The map is valid whatever a panicking holder was doing (inserts are whole).
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<(Caller, i64), Status> {
        let invalid = |e: &dyn std::fmt::Display| {
            Status::unauthenticated(crate::error::bounded(format!("invalid bearer token: {e}")))
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e))?;
        if header.crit.is_some() {
            // RFC 7515 4.1.11: extensions the recipient must understand; this one knows none.
            return Err(invalid(
                &"critical header parameters (crit) are not supported",
            ));
        }
        let alg = header.alg;
        let mut refused = None;
        for k in self
            .keys
            .keys
            .iter()
            .filter(|k| k.validation.algorithms.contains(&alg))
        {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &k.validation) {
                Ok(data) => {
                    lifetime(&data.claims, now, self.keys.max_lifetime).map_err(|e| invalid(&e))?;
                    return caller_of(data.claims);
                }
                // A signature another key of the same kind may verify (rotation); any other
                // refusal (expired, claims) is the token's, whatever the key.
                Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    refused = Some(e)
                }
                Err(e) => return Err(invalid(&e)),
            }
        }
        Err(match refused {
            Some(e) => invalid(&e),
            None => invalid(&format!("no key verifies {alg:?} tokens")),
        })
    }
}

/// Refuses a token (its signature verified) without `iat`, issued ahead of `now` beyond the
/// leeway, or spanning more than `max` seconds from `iat` to `exp`.
fn lifetime(c: &Claims, now: i64, max: i64) -> Result<(), String> {
    let Some(iat) = c.iat else {
        return Err(
            "no iat claim: this service bounds a token's lifetime from when it was issued \
             (AUTH_JWT_MAX_LIFETIME_HOURS)"
                .to_owned(),
        );
    };
    if iat > now.saturating_add(LEEWAY_SECS) {
        return Err(format!(
            "iat {iat} is {} s ahead of this service's clock",
            iat - now
        ));
    }
    let span = c.exp.saturating_sub(iat);
    if span > max {
        return Err(format!(
            "valid for {span} s from iat to exp, longer than the {max} s ({} h) this service \
             accepts (AUTH_JWT_MAX_LIFETIME_HOURS)",
            max / 3600
        ));
    }
    Ok(())
}

/// The longest `sub` claim taken: every write and transition records it.
pub const MAX_SUBJECT: usize = 256;

/// An identifier as recorded and compared (a subject, a bank id): not blank, no spaces around
/// it, and nothing that shows nothing (control, format characters, variation selectors), so two
/// that read alike are the same.
fn readable(v: &str) -> bool {
    use fupin_kernel::text::{is_format_character, is_variation_selector};
    !v.is_empty()
        && v.trim() == v
        && !v
            .chars()
            .any(|c| c.is_control() || is_format_character(c) || is_variation_selector(c))
}

/// The caller a token's claims name, if they hold together: a subject to record as who acted
/// (see `readable`, at most [`MAX_SUBJECT`] bytes), the area's level matches the role and a
/// bank names its bank id.
pub fn caller_of(c: Claims) -> Result<(Caller, i64), Status> {
    if !readable(&c.sub) || c.sub.len() > MAX_SUBJECT {
        // Who acted is recorded with every write (R-IN-2) and unmasked read (R-CR-11); callers
        // with a blank subject would also share one request-id space (R-IN-8).
        return Err(Status::unauthenticated(crate::error::bounded(format!(
            "token sub claim: blank, with spaces around it, with control or invisible \
             characters, or longer than {MAX_SUBJECT} bytes"
        ))));
    }
    let area = AreaCode::parse(&c.area).map_err(|e| {
        Status::unauthenticated(crate::error::bounded(format!("token area claim: {e}")))
    })?;
    use fupin_kernel::AreaLevel::*;
    let level_ok = match c.role {
        Role::VillageStaff => area.level() == Village,
        Role::TownStaff => area.level() == Town,
        Role::DistrictStaff | Role::Bank | Role::Operator => area.level() == District,
    };
    if !level_ok {
        return Err(Status::unauthenticated(crate::error::bounded(format!(
            "token area {} does not match role {}",
            area.as_str(),
            c.role.as_str()
        ))));
    }
    if c.role == Role::Bank && !c.bank_id.as_deref().is_some_and(readable) {
        return Err(Status::unauthenticated(
            "bank token: bank_id claim missing, blank, with spaces around it, or with control \
             or invisible characters",
        ));
    }
    Ok((
        Caller {
            subject: c.sub,
            role: c.role,
            area,
            // Only a bank is one: a staff token's stray claim would be recorded as the
            // caller's bank in the audit rows.
            bank_id: c.bank_id.filter(|_| c.role == Role::Bank),
        },
        c.exp,
    ))
}

impl JwtVerifier {
    /// Tonic interceptor: verifies `authorization: Bearer <jwt>` and stores the [`Caller`].
    #[allow(clippy::result_large_err)]
    pub fn intercept(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let header = req.metadata().get("authorization").ok_or_else(|| {
            Status::unauthenticated("missing authorization metadata (Bearer token)")
        })?;
        let value = header
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization metadata is not ASCII"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        let caller = self.verify(token.trim())?;
        // Mutual TLS: a bank's token only over a connection whose certificate names the bank.
        if let Some(leaf) = req.peer_certs().as_deref().and_then(|certs| certs.first()) {
            crate::client_cert::bank_named_by(&caller, leaf)?;
        }
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

/// Issues an HS256 token (the CLI's dev tokens, and tests).
pub fn issue_token(secret: &str, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    SigningKey::hs256(secret).sign(claims)
}

/// The claims of a token for `subject` valid for `ttl_secs` from now.
pub fn claims_for(
    subject: &str,
    role: Role,
    area: &str,
    bank_id: Option<&str>,
    ttl_secs: i64,
) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: subject.to_owned(),
        role,
        area: area.to_owned(),
        bank_id: bank_id.map(str::to_owned),
        exp: now + ttl_secs,
        iat: Some(now),
        iss: None,
        aud: Vec::new(),
    }
}

/// A string or a list of strings, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Convenience for tests and the CLI: a token valid for `ttl_secs`.
pub fn token_for(
    secret: &str,
    subject: &str,
    role: Role,
    area: &str,
    bank_id: Option<&str>,
    ttl_secs: i64,
) -> String {
    let claims = claims_for(subject, role, area, bank_id, ttl_secs);
    issue_token(secret, &claims).expect("HS256 encoding of plain claims cannot fail")
}

/// The caller that the auth interceptor put in the request.
#[allow(clippy::result_large_err)]
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let t = token_for("k1", "u1", Role::TownStaff, "410311100", None, 60);
        let c = JwtVerifier::hs256("k1").verify(&t).unwrap();
        assert_eq!(c.role, Role::TownStaff);
        assert_eq!(c.area.as_str(), "410311100");
        let e = JwtVerifier::hs256("k2").verify(&t).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn a_remembered_token_is_refused_once_expired() {
        let v = JwtVerifier::hs256("k");
        let t = token_for("k", "u", Role::DistrictStaff, "410311", None, 60);
        let now = chrono::Utc::now().timestamp();
        assert_eq!(v.verify(&t).unwrap().subject, "u");
        assert_eq!(v.cache().len(), 1, "a valid token is remembered");
        let exp = v.cache().values().next().unwrap().1;
        assert!(
            v.verify_at(&t, exp + LEEWAY_SECS).is_ok(),
            "within the leeway"
        );
        let e = v.verify_at(&t, exp + LEEWAY_SECS + 1).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        // Nothing else about the token changed: only the remembered expiry refused it.
        assert!(v.verify_at(&t, now).is_ok());
    }

    #[test]
    fn invalid_tokens_are_not_remembered_and_the_cache_is_bounded() {
        let v = JwtVerifier::hs256("k");
        let forged = token_for("other", "u", Role::DistrictStaff, "410311", None, 60);
        assert!(v.verify(&forged).is_err());
        assert!(
            v.verify(&forged).is_err(),
            "refused again, not served from memory"
        );
        assert_eq!(v.cache().len(), 0);
        for i in 0..=VERIFIED_CAPACITY {
            let t = token_for(
                "k",
                &format!("u{i}"),
                Role::DistrictStaff,
                "410311",
                None,
                60,
            );
            v.verify(&t).unwrap();
        }
        assert!(v.cache().len() <= VERIFIED_CAPACITY);
    }

    // Security review: a token's lifetime is bounded (AUTH_JWT_MAX_LIFETIME_HOURS, a day by
    // default). It must say when it was issued, not ahead of the clock beyond the leeway, and
    // expire at most the bound after that: exactly the bound is taken, a second more is not.
    #[test]
    fn a_token_lives_at_most_the_configured_lifetime() {
        let key = EncodingKey::from_secret(b"k");
        let now = chrono::Utc::now().timestamp();
        let sign = |iat: Option<i64>, exp: i64| {
            let mut c = claims_for("u", Role::DistrictStaff, "410311", None, 0);
            c.iat = iat;
            c.exp = exp;
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &key).unwrap()
        };
        let refusal = |v: &JwtVerifier, t: &str| {
            let e = v.verify(t).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{}", e.message());
            e.message().to_owned()
        };

        let hour = JwtVerifier::new(TokenKeys::hs256("k").lifetime_at_most(3600));
        assert!(hour.verify(&sign(Some(now - 10), now - 10 + 3600)).is_ok());
        let e = refusal(&hour, &sign(Some(now - 10), now - 10 + 3601));
        assert!(
            e.contains("valid for 3601 s") && e.contains("AUTH_JWT_MAX_LIFETIME_HOURS"),
            "{e}"
        );
        let e = refusal(&hour, &sign(None, now + 60));
        assert!(e.contains("no iat claim"), "{e}");
        // Issued ahead of the clock: within the leeway (clock skew) it is taken, beyond it not.
        assert!(
            hour.verify(&sign(Some(now + LEEWAY_SECS - 5), now + 600))
                .is_ok()
        );
        let e = refusal(&hour, &sign(Some(now + LEEWAY_SECS + 5), now + 600));
        assert!(e.contains("ahead of this service's clock"), "{e}");

        let day = JwtVerifier::hs256("k");
        assert!(
            day.verify(&sign(Some(now), now + DEFAULT_MAX_LIFETIME_SECS))
                .is_ok()
        );
        refusal(&day, &sign(Some(now), now + DEFAULT_MAX_LIFETIME_SECS + 1));
        // A forged token is told about its signature, not its lifetime.
        let forged = {
            let mut c = claims_for("u", Role::DistrictStaff, "410311", None, 0);
            c.iat = None;
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &c,
                &EncodingKey::from_secret(b"other"),
            )
            .unwrap()
        };
        assert!(refusal(&day, &forged).contains("InvalidSignature"));
    }

    #[test]
    fn expired_token_refused() {
        let t = token_for("k", "u", Role::DistrictStaff, "410311", None, -3600);
        assert_eq!(
            JwtVerifier::hs256("k").verify(&t).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn area_must_match_role() {
        let t = token_for("k", "u", Role::VillageStaff, "410311100", None, 60);
        assert!(JwtVerifier::hs256("k").verify(&t).is_err());
        let t = token_for("k", "u", Role::Bank, "410311", None, 60);
        assert!(
            JwtVerifier::hs256("k").verify(&t).is_err(),
            "bank without bank_id"
        );
        for blank in ["", "  ", "\t"] {
            let t = token_for("k", "u", Role::Bank, "410311", Some(blank), 60);
            assert_eq!(
                JwtVerifier::hs256("k").verify(&t).unwrap_err().code(),
                tonic::Code::Unauthenticated,
                "bank_id {blank:?} names no bank"
            );
        }
        let t = token_for("k", "u", Role::Bank, "410311", Some("abc-luolong"), 60);
        assert!(JwtVerifier::hs256("k").verify(&t).is_ok());
        let t = token_for("k", "u", Role::Bank, "410311", Some("abc\u{0}"), 60);
        assert!(
            JwtVerifier::hs256("k").verify(&t).is_err(),
            "bank_id with NUL"
        );
    }

    // R-IN-2 (who acted), R-CR-11 (who read), R-IN-8 (request ids per subject): a token must
    // name someone to record.
    #[test]
    fn a_token_names_a_subject_to_record() {
        let subject = |sub: &str| {
            let t = token_for("k", sub, Role::DistrictStaff, "410311", None, 60);
            JwtVerifier::hs256("k").verify(&t)
        };
        let long = "u".repeat(MAX_SUBJECT + 1);
        for bad in [
            "",
            "   ",
            "\t",
            "a\u{0}b",
            "a\nb",
            " u",
            "u ",
            "clerk\u{200B}1",
            "\u{200B}",
            "a\u{202E}b",
            long.as_str(),
        ] {
            let e = subject(bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{bad:?}");
            assert!(e.message().contains("sub"), "{}", e.message());
        }
        for good in ["u", "张三@luolong", "8f14e45f-ceea-467f-a0e6-3a3b1c2d4e5f"] {
            assert_eq!(subject(good).unwrap().subject, good);
        }
        assert!(subject(&"u".repeat(MAX_SUBJECT)).is_ok());
    }

    // A token for an area the deployment does not serve (another district, a town or village
    // the district does not have) is refused, also for a bank and for the district tier.
    #[test]
    fn tokens_of_areas_not_served_are_refused() {
        let code = |c: &str| AreaCode::parse(c).unwrap();
        let served = [code("410311"), code("410311100"), code("410311100201")];
        let v = JwtVerifier::hs256("k").serving(&served);
        let verify = |role, area: &str, bank: Option<&str>| {
            v.verify(&token_for("k", "u", role, area, bank, 60))
        };
        assert!(verify(Role::DistrictStaff, "410311", None).is_ok());
        assert!(verify(Role::TownStaff, "410311100", None).is_ok());
        assert!(verify(Role::VillageStaff, "410311100201", None).is_ok());
        assert!(verify(Role::Bank, "410311", Some("abc")).is_ok());
        for (role, area, bank) in [
            (Role::DistrictStaff, "110101", None),
            (Role::Bank, "110101", Some("abc")),
            (Role::Operator, "110101", None),
            (Role::TownStaff, "410311199", None),
            (Role::VillageStaff, "410311100299", None),
        ] {
            let e = verify(role, area, bank).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{area}");
            assert!(e.message().contains(area), "{}", e.message());
            // refused again, not remembered
            assert!(verify(role, area, bank).is_err());
        }
    }

    // R-IN-6: a bank token must name one of the deployment's partner banks; staff tokens name
    // none.
    #[test]
    fn bank_tokens_of_banks_not_served_are_refused() {
        let v = JwtVerifier::hs256("k").banks(["abc-luolong-xinqu", "icbc-luolong"]);
        let verify =
            |role, bank: Option<&str>| v.verify(&token_for("k", "u", role, "410311", bank, 60));
        assert!(verify(Role::Bank, Some("abc-luolong-xinqu")).is_ok());
        assert!(verify(Role::Bank, Some("icbc-luolong")).is_ok());
        assert!(verify(Role::DistrictStaff, None).is_ok());
        // The check is a bank's: a staff token is not refused for a bank_id claim it carries.
        let staff_with_claim = v.verify(&token_for(
            "k",
            "u",
            Role::DistrictStaff,
            "410311",
            Some("ccb-other"),
            60,
        ));
        assert!(
            !staff_with_claim
                .as_ref()
                .is_err_and(|e| e.message().contains("partner bank")),
            "{staff_with_claim:?}"
        );
        // Nor does it become the caller's bank (audit rows record the caller's bank_id).
        assert_eq!(staff_with_claim.unwrap().bank_id, None);
        for other in ["ccb-other", "ABC-LUOLONG-XINQU", "abc-luolong"] {
            let e = verify(Role::Bank, Some(other)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{other}");
            assert!(e.message().contains(other), "{}", e.message());
            assert!(verify(Role::Bank, Some(other)).is_err(), "not remembered");
        }
    }

    // RFC 7515 4.1.11: a token with extensions marked critical is refused, since none is
    // understood here.
    #[test]
    fn critical_header_extensions_are_refused() {
        let claims = claims_for("u", Role::DistrictStaff, "410311", None, 60);
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["exp".into()]);
        let key = EncodingKey::from_secret(b"k");
        let t = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let e = JwtVerifier::hs256("k").verify(&t).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(e.message().contains("crit"), "{}", e.message());
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert!(JwtVerifier::hs256("k").verify(&t).is_ok());
    }

    // R-X-3: a claim the token's JSON cannot hold is refused with a message short enough to
    // reach the caller (gRPC clients refuse a status header above 8-16 KiB), whatever its length.
    #[test]
    fn a_long_bad_claim_is_refused_with_a_short_message() {
        let key = EncodingKey::from_secret(b"k");
        let claims = serde_json::json!({
            "sub": "u",
            "role": "测".repeat(2500),
            "area": "410311",
            "exp": 4_102_444_800_i64,
        });
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        let e = JwtVerifier::hs256("k").verify(&t).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(
            e.message().starts_with("invalid bearer token"),
            "{}",
            e.message()
        );
        assert!(
            e.message().len() <= crate::error::MAX_MESSAGE_BYTES,
            "{}",
            e.message().len()
        );
    }

    fn key_file(name: &str) -> String {
        let path = format!("{}/tests/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).expect(&path)
    }

    fn signed_with(private: &str, claims: &Claims) -> String {
        SigningKey::private_pem(&key_file(private))
            .expect(private)
            .sign(claims)
            .expect("signs")
    }

    fn district(ttl_secs: i64) -> Claims {
        claims_for("d1", Role::DistrictStaff, "410311", None, ttl_secs)
    }

    // ARCHITECTURE Auth: tokens of an issuer that alone holds the private key are verified
    // with its public key, for each kind of key; a token of another key, or HS256 (which anyone
    // who knows a shared secret could sign), is refused when only public keys are configured.
    #[test]
    fn public_keys_verify_their_issuers_tokens_only() {
        for (private, public, alg, kind) in [
            ("ed25519.key", "ed25519.pub", Algorithm::EdDSA, "EdDSA"),
            ("p256.key", "p256.pub", Algorithm::ES256, "ECDSA"),
            ("rsa.key", "rsa.pub", Algorithm::RS256, "RSA"),
            ("rsa-pkcs1.key", "rsa-pkcs1.pub", Algorithm::RS256, "RSA"),
        ] {
            let keys = TokenKeys::public_pem(&key_file(public)).expect(public);
            assert_eq!(keys.describe(), kind);
            let signing = SigningKey::private_pem(&key_file(private)).expect(private);
            assert_eq!(signing.algorithm(), alg, "{private}");
            let v = JwtVerifier::new(keys);
            let token = signing.sign(&district(60)).unwrap();
            assert_eq!(v.verify(&token).unwrap().subject, "d1", "{private}");
            let e = v.verify(&signed_with("ed25519-next.key", &district(60)));
            assert!(e.is_err(), "{public} verified another key's token");
            let hs = token_for("any-secret", "d1", Role::DistrictStaff, "410311", None, 60);
            let e = v.verify(&hs).unwrap_err();
            assert!(e.message().contains("no key verifies HS256"), "{e:?}");
            let expired = signing.sign(&district(-3600)).unwrap();
            assert!(v.verify(&expired).is_err(), "{private}: expired");
        }
    }

    // Rotation: with the old and the new public key in the file, tokens of both verify; once
    // the old key is removed, its tokens are refused. A secret and public keys together accept
    // both kinds, while moving from one to the other.
    #[test]
    fn several_keys_let_an_issuer_rotate() {
        let both = format!(
            "{}\n{}",
            key_file("ed25519.pub"),
            key_file("ed25519-next.pub")
        );
        let v = JwtVerifier::new(TokenKeys::public_pem(&both).unwrap());
        let old = signed_with("ed25519.key", &district(60));
        let new = signed_with("ed25519-next.key", &district(60));
        assert!(v.verify(&old).is_ok() && v.verify(&new).is_ok());
        let next_only =
            JwtVerifier::new(TokenKeys::public_pem(&key_file("ed25519-next.pub")).unwrap());
        assert!(next_only.verify(&old).is_err() && next_only.verify(&new).is_ok());

        let mixed =
            TokenKeys::hs256("shared").and(TokenKeys::public_pem(&key_file("p256.pub")).unwrap());
        assert_eq!(mixed.describe(), "HS256, ECDSA");
        assert_eq!(
            format!("{mixed:?}"),
            "TokenKeys(HS256, ECDSA)",
            "no secret in Debug"
        );
        let v = JwtVerifier::new(mixed);
        let hs = token_for("shared", "d1", Role::DistrictStaff, "410311", None, 60);
        assert!(v.verify(&hs).is_ok());
        assert!(v.verify(&signed_with("p256.key", &district(60))).is_ok());
        // The claims are checked whatever signed them.
        let bank = claims_for("b", Role::Bank, "410311", None, 60);
        assert!(
            v.verify(&signed_with("p256.key", &bank)).is_err(),
            "bank without bank_id"
        );
    }

    /// `file`'s key with the key bytes of its bit string replaced by `key`; `keep` is the
    /// length of the SPKI up to and including the bit string's length byte.
    fn with_bits(file: &str, keep: usize, key: &[u8]) -> String {
        let (_, der) = pem_rfc7468::decode_vec(key_file(file).as_bytes()).unwrap();
        let mut spki = der[..keep].to_vec();
        spki.push(0); // no unused bits
        spki.extend_from_slice(key);
        // Fix the outer and bit-string lengths (short forms: these keys are small).
        let body = spki.len() - 2;
        spki[1] = body as u8;
        spki[keep - 1] = (key.len() + 1) as u8;
        pem_rfc7468::encode_string("PUBLIC KEY", pem_rfc7468::LineEnding::LF, &spki).unwrap()
    }

    // A key that would fail only when a token arrives (and then refuse every token, or stop a
    // rotation at the bad key) is refused when the file is loaded instead.
    #[test]
    fn keys_are_checked_when_loaded() {
        let err = |pem: &str| TokenKeys::public_pem(pem).unwrap_err().to_string();
        // Ed25519: 11 bytes up to the bit string's length, then 0x00 and the 32-byte point.
        let short = with_bits("ed25519.pub", 11, &[0u8; 16]);
        assert!(err(&short).contains("32 bytes"), "{}", err(&short));
        // P-256: 25 bytes up to the bit string's length, then 0x00, 0x04 and 64 bytes of
        // coordinates, here off the curve.
        let mut off_curve = vec![4u8];
        off_curve.extend([7u8; 64]);
        let bad_point = with_bits("p256.pub", 25, &off_curve);
        assert!(
            err(&bad_point).contains("not a point"),
            "{}",
            err(&bad_point)
        );
        let e = err(&key_file("rsa1024.pub"));
        assert!(e.contains("1024 bits"), "{e}");
        // Too long is told by its size too, not as a malformed key.
        let e = err(&key_file("rsa8192.pub"));
        assert!(e.contains("8192 bits; 2048 to 4096"), "{e}");
        let cut = key_file("ed25519.pub");
        let cut = &cut[..cut.find("-----END").unwrap()];
        let e = err(&format!("{}\n{cut}", key_file("p256.pub")));
        assert!(e.contains("key 2 has no -----END line"), "{e}");
        // Cut short before another key: refused too, not loaded as the other key alone.
        let e = err(&format!("{cut}\n{}", key_file("p256.pub")));
        assert!(e.contains("key 1 has no -----END line"), "{e}");
    }

    // With an issuer and audience expected, a token must name both, as expected: an issuer's
    // tokens for another system are refused here. Without, a token naming an audience is
    // refused (it was meant for someone in particular).
    #[test]
    fn issuer_and_audience_are_checked_when_expected() {
        let keys = TokenKeys::public_pem(&key_file("ed25519.pub")).unwrap();
        let strict = JwtVerifier::new(keys.clone().expecting(Some("idp.luolong"), Some("fupin")));
        let loose = JwtVerifier::new(keys);
        let with = |iss: Option<&str>, aud: Option<&str>| {
            let mut c = district(60);
            c.iss = iss.map(str::to_owned);
            c.aud = aud.map(str::to_owned).into_iter().collect();
            signed_with("ed25519.key", &c)
        };
        assert!(
            strict
                .verify(&with(Some("idp.luolong"), Some("fupin")))
                .is_ok()
        );
        for (iss, aud) in [
            (None, Some("fupin")),
            (Some("idp.luolong"), None),
            (Some("other-idp"), Some("fupin")),
            (Some("idp.luolong"), Some("other-system")),
        ] {
            assert!(strict.verify(&with(iss, aud)).is_err(), "{iss:?} {aud:?}");
        }
        assert!(loose.verify(&with(Some("any"), None)).is_ok());
        assert!(loose.verify(&with(None, Some("fupin"))).is_err());
        // An audience list, as identity providers send it: accepted when it names ours.
        let mut listed = district(60);
        listed.iss = Some("idp.luolong".into());
        listed.aud = vec!["account".into(), "fupin".into()];
        let token = signed_with("ed25519.key", &listed);
        let payload = token.split('.').nth(1).unwrap();
        let json = String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        assert!(json.contains(r#""aud":["account","fupin"]"#), "{json}");
        assert_eq!(strict.verify(&token).unwrap().subject, "d1");
        listed.aud = vec!["account".into()];
        assert!(strict.verify(&signed_with("ed25519.key", &listed)).is_err());
    }

    // A key file that is not what it should be stops the start, naming the key.
    #[test]
    fn unusable_key_files_are_refused() {
        let err = |pem: &str| TokenKeys::public_pem(pem).unwrap_err().to_string();
        assert!(err("").contains("no PEM public key"));
        assert!(err("not a key").contains("no PEM public key"));
        assert!(
            err(&key_file("ed25519.key")).contains("not a public key"),
            "a private key"
        );
        assert!(err(&key_file("k256.pub")).contains("not P-256 or P-384"));
        let second_bad = format!("{}\n{}", key_file("ed25519.pub"), key_file("k256.pub"));
        assert!(
            err(&second_bad).starts_with("key 2:"),
            "{}",
            err(&second_bad)
        );
        let broken = key_file("ed25519.pub").replace("MC", "M!");
        assert!(err(&broken).contains("key 1"), "{}", err(&broken));
        let sign = |pem: &str| SigningKey::private_pem(pem).err().map(|e| e.to_string());
        assert!(
            sign(&key_file("ed25519.pub"))
                .unwrap()
                .contains("not a PKCS#8 private key")
        );
        assert!(
            sign(&key_file("k256.key"))
                .unwrap()
                .contains("not P-256 or P-384")
        );
    }

    #[test]
    fn missing_or_malformed_header_refused() {
        let v = JwtVerifier::hs256("k");
        assert!(v.intercept(Request::new(())).is_err());
        let mut r = Request::new(());
        r.metadata_mut()
            .insert("authorization", "Basic abc".parse().unwrap());
        assert!(v.intercept(r).is_err());
    }
}
