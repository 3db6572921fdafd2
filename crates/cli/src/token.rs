//! `fupinctl token`: development bearer tokens.

use anyhow::Context;
use fupin_platform::auth::{self, Role, SigningKey};

use crate::Global;

/// Roles as written on the command line (the `role` claim).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum RoleArg {
    VillageStaff,
    TownStaff,
    DistrictStaff,
    Bank,
    Operator,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::VillageStaff => Role::VillageStaff,
            RoleArg::TownStaff => Role::TownStaff,
            RoleArg::DistrictStaff => Role::DistrictStaff,
            RoleArg::Bank => Role::Bank,
            RoleArg::Operator => Role::Operator,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// Role claim.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// Organisation area: a village (12 digits) for village_staff, a town (9) for town_staff,
    /// the district (6) for district_staff, bank and operator.
    #[arg(long)]
    pub area: String,
    /// Bank id claim (required for --role bank), e.g. abc-luolong-xinqu.
    #[arg(long)]
    pub bank_id: Option<String>,
    /// Subject claim; defaults to `dev:<role>:<area>`.
    #[arg(long)]
    pub subject: Option<String>,
    /// Lifetime in hours. The services refuse tokens that live longer than their
    /// AUTH_JWT_MAX_LIFETIME_HOURS (24 unless set; at most 8760).
    #[arg(long, default_value_t = 12)]
    pub ttl_hours: i64,
}

pub fn run(g: &Global, args: &TokenArgs) -> anyhow::Result<()> {
    let role = Role::from(args.role);
    let subject = args
        .subject
        .clone()
        .unwrap_or_else(|| match args.bank_id.as_deref() {
            // Request ids are scoped by subject (R-IN-8): two banks must not share one.
            Some(bank) => format!("{}:{bank}", default_subject(role, &args.area)),
            None => default_subject(role, &args.area),
        });
    let token = mint(
        &signer(g)?,
        &subject,
        role,
        &args.area,
        args.bank_id.as_deref(),
        args.ttl_hours
            .checked_mul(3600)
            .context("--ttl-hours is too large")?,
    )?;
    if args.ttl_hours * 3600 > auth::DEFAULT_MAX_LIFETIME_SECS {
        eprintln!(
            "fupinctl: a {} h token is refused by services left at the default \
             AUTH_JWT_MAX_LIFETIME_HOURS ({} h)",
            args.ttl_hours,
            auth::DEFAULT_MAX_LIFETIME_SECS / 3600
        );
    }
    println!("{token}");
    Ok(())
}

pub fn default_subject(role: Role, area: &str) -> String {
    format!("dev:{}:{area}", role.as_str())
}

/// What tokens are signed with, and the issuer and audience they name.
pub struct Signer {
    key: SigningKey,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Signer {
    /// HS256 with `secret`, naming no issuer or audience.
    #[cfg(test)]
    pub fn hs256(secret: &str) -> Self {
        Self {
            key: SigningKey::hs256(secret),
            issuer: None,
            audience: None,
        }
    }
}

/// The private key in `--signing-key` when given (the services then hold its public key,
/// `AUTH_JWT_PUBLIC_KEY_FILE`), the HS256 secret otherwise; `--token-issuer` and
/// `--token-audience` for services that expect them (`AUTH_JWT_ISSUER`, `AUTH_JWT_AUDIENCE`).
pub fn signer(g: &Global) -> anyhow::Result<Signer> {
    let key = match &g.signing_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("--signing-key {}", path.display()))?;
            SigningKey::private_pem(&pem)
                .with_context(|| format!("--signing-key {}", path.display()))?
        }
        None => SigningKey::hs256(&g.secret),
    };
    Ok(Signer {
        key,
        issuer: g.token_issuer.clone(),
        audience: g.token_audience.clone(),
    })
}

/// Signs a token after checking that the services would accept its claims (area level matches
/// the role, banks carry a bank id), so a typo fails here rather than as `Unauthenticated`
/// later.
pub fn mint(
    signer: &Signer,
    subject: &str,
    role: Role,
    area: &str,
    bank_id: Option<&str>,
    ttl_secs: i64,
) -> anyhow::Result<String> {
    anyhow::ensure!(ttl_secs > 0, "the token lifetime must be positive");
    anyhow::ensure!(
        ttl_secs <= auth::MAX_LIFETIME_LIMIT_SECS,
        "a token lives at most {} hours: the services refuse longer ones \
         (AUTH_JWT_MAX_LIFETIME_HOURS, 24 unless set)",
        auth::MAX_LIFETIME_LIMIT_SECS / 3600
    );
    let mut claims = auth::claims_for(subject, role, area, bank_id, ttl_secs);
    claims.iss = signer.issuer.clone();
    claims.aud = signer.audience.clone().into_iter().collect();
    auth::caller_of(claims.clone())
        .map_err(|status| anyhow::anyhow!("{}", status.message()))
        .context("the services would refuse this token")?;
    Ok(signer.key.sign(&claims)?)
}

#[cfg(test)]
mod tests {
    use fupin_platform::auth::JwtVerifier;

    use super::*;

    #[test]
    fn token_round_trips_through_the_services_verifier() {
        let t = mint(
            &Signer::hs256("s3cret"),
            "alice",
            Role::VillageStaff,
            "410311102201",
            None,
            3600,
        )
        .unwrap();
        let caller = JwtVerifier::hs256("s3cret").verify(&t).unwrap();
        assert_eq!(caller.subject, "alice");
        assert_eq!(caller.role, Role::VillageStaff);
        assert_eq!(caller.area.as_str(), "410311102201");
        assert!(JwtVerifier::hs256("other").verify(&t).is_err());

        let t = mint(
            &Signer::hs256("k"),
            "b",
            Role::Bank,
            "410311",
            Some("abc-luolong-xinqu"),
            60,
        )
        .unwrap();
        let caller = JwtVerifier::hs256("k").verify(&t).unwrap();
        assert_eq!(caller.bank_id.as_deref(), Some("abc-luolong-xinqu"));
    }

    #[test]
    fn tokens_the_services_would_refuse_are_not_printed() {
        assert!(
            mint(
                &Signer::hs256("k"),
                "s",
                Role::VillageStaff,
                "410311",
                None,
                60
            )
            .is_err(),
            "district area"
        );
        assert!(
            mint(&Signer::hs256("k"), "s", Role::Bank, "410311", None, 60).is_err(),
            "bank without bank id"
        );
        assert!(
            mint(&Signer::hs256("k"), "s", Role::Operator, "4103", None, 60).is_err(),
            "bad area"
        );
        assert!(
            mint(&Signer::hs256("k"), "s", Role::Operator, "410311", None, 0).is_err(),
            "no lifetime"
        );
        let year = fupin_platform::auth::MAX_LIFETIME_LIMIT_SECS;
        let s = Signer::hs256("k");
        assert!(mint(&s, "s", Role::Operator, "410311", None, year).is_ok());
        assert!(
            mint(&s, "s", Role::Operator, "410311", None, year + 1).is_err(),
            "longer than any service accepts"
        );
    }

    #[test]
    fn role_names_match_the_claim() {
        use clap::ValueEnum;
        for r in RoleArg::value_variants() {
            let name = r.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(name, Role::from(*r).as_str());
        }
    }
}
