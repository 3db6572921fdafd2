//! Bearer-token authentication. Every RPC of a business service carries a JWT (HS256, key from
//! `AUTH_JWT_SECRET`) whose claims give the caller's role, organisation area and, for banks, the
//! bank id. The interceptor turns a valid token into a [`Caller`] in the request extensions;
//! anything else is `Unauthenticated`. Area scoping is decided by each service.

use fupin_kernel::AreaCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
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
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier(HS256)")
    }
}

impl JwtVerifier {
    pub fn hs256(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
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
        Ok(Caller {
            subject: c.sub,
            role: c.role,
            area,
            bank_id: c.bank_id,
        })
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
