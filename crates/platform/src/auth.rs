//! Bearer-token authentication. Every RPC of a business service carries a JWT (HS256, key from
//! `AUTH_JWT_SECRET`) whose claims give the caller's role, organisation area and, for banks, the
//! bank id. The interceptor turns a valid token into a [`Caller`] in the request extensions;
//! anything else is `Unauthenticated`. Area scoping is decided by each service.

use std::{
    collections::HashMap,
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
    #[serde(default)]
    pub iat: i64,
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

#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    /// Tokens already verified, by their SHA-256, with the caller and expiry. A bank's core
    /// system or a staff client sends one token on every call until it renews it; checking the
    /// signature and parsing the claims each time was about 5% of intake's CPU per submission.
    /// A hit is still refused once the token has expired. Only valid tokens are kept.
    verified: Arc<Mutex<Verified>>,
}

/// SHA-256 of a token -> the caller it names and its `exp`.
type Verified = HashMap<[u8; 32], (Caller, i64)>;

/// Seconds of clock skew allowed on `exp`.
const LEEWAY_SECS: i64 = 30;
/// Verified tokens remembered at most; the cache starts over when full.
const VERIFIED_CAPACITY: usize = 10_000;

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier(HS256)")
    }
}

impl JwtVerifier {
    pub fn hs256(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS as u64;
        // A token not valid yet (`nbf` ahead, beyond the leeway) is refused like an expired one.
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            verified: Arc::default(),
        }
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
        let (caller, exp) = self.verify_uncached(token)?;
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

    fn verify_uncached(&self, token: &str) -> Result<(Caller, i64), Status> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| Status::unauthenticated(format!("invalid bearer token: {e}")))?;
        let c = data.claims;
        let area = AreaCode::parse(&c.area)
            .map_err(|e| Status::unauthenticated(format!("token area claim: {e}")))?;
        use fupin_kernel::AreaLevel::*;
        let level_ok = match c.role {
            Role::VillageStaff => area.level() == Village,
            Role::TownStaff => area.level() == Town,
            Role::DistrictStaff | Role::Bank | Role::Operator => area.level() == District,
        };
        if !level_ok {
            return Err(Status::unauthenticated(format!(
                "token area {} does not match role {}",
                area.as_str(),
                c.role.as_str()
            )));
        }
        if c.role == Role::Bank && c.bank_id.as_deref().is_none_or(str::is_empty) {
            return Err(Status::unauthenticated("bank token without bank_id claim"));
        }
        Ok((
            Caller {
                subject: c.sub,
                role: c.role,
                area,
                bank_id: c.bank_id,
            },
            c.exp,
        ))
    }

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
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

/// Issues a token (the CLI's dev tokens, and tests).
pub fn issue_token(secret: &str, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
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
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: subject.to_owned(),
        role,
        area: area.to_owned(),
        bank_id: bank_id.map(str::to_owned),
        exp: now + ttl_secs,
        iat: now,
    };
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
