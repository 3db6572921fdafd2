//! `fupinctl intake submit|get`: convenience calls to the intake service, with a token minted
//! for the purpose (village staff of the household's village; district staff for reads).

use fupin_kernel::{AreaCode, AreaLevel, ResidentId};
use fupin_platform::auth::Role;
use fupin_proto::{
    common::v1::Money,
    intake::v1::{
        self as pb, ApplicantKind, Application, GetApplicationRequest, Household, Purpose,
        SubmitApplicationRequest, intake_service_client::IntakeServiceClient,
    },
};

use crate::{Global, grpc, token};

/// The demo district; district-staff tokens for reads are scoped to it.
pub const DISTRICT: &str = "410311";
const TOKEN_TTL_SECS: i64 = 600;

#[derive(clap::Subcommand, Debug)]
pub enum IntakeCommand {
    /// Submit a household application as village staff of its village.
    Submit(SubmitArgs),
    /// Show one application (as district staff of 410311).
    Get {
        /// Application id.
        id: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    /// Village (12 digits) where the household is registered.
    #[arg(long)]
    pub village: String,
    /// Head of household's resident ID (18 characters).
    #[arg(long)]
    pub resident_id: String,
    #[arg(long)]
    pub name: String,
    /// Amount in yuan, e.g. 20000 or 20000.00.
    #[arg(long)]
    pub amount: String,
    /// Term in months.
    #[arg(long)]
    pub term: u32,
    /// planting, breeding, processing, rural_tourism, ecommerce, handicraft, other_production
    /// (consumption and housing are accepted here and refused by admission).
    #[arg(long, value_parser = parse_purpose)]
    pub purpose: Purpose,
    /// 建档立卡 poor-household registration number.
    #[arg(long)]
    pub poor_number: Option<String>,
    #[arg(long)]
    pub phone: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Idempotency key; a retry with the same id returns the first result. Default: fresh.
    #[arg(long)]
    pub request_id: Option<String>,
}

/// `breeding`, `rural-tourism`, `PURPOSE_BREEDING` -> the protobuf enum.
pub fn parse_purpose(s: &str) -> Result<Purpose, String> {
    let upper = s.trim().to_ascii_uppercase().replace('-', "_");
    let name = if upper.starts_with("PURPOSE_") {
        upper
    } else {
        format!("PURPOSE_{upper}")
    };
    match Purpose::from_str_name(&name) {
        Some(Purpose::Unspecified) | None => Err(format!(
            "unknown purpose {s:?}: planting, breeding, processing, rural_tourism, ecommerce, \
             handicraft, other_production, consumption, housing"
        )),
        Some(p) => Ok(p),
    }
}

pub async fn run(g: &Global, command: IntakeCommand) -> anyhow::Result<()> {
    match command {
        IntakeCommand::Submit(args) => {
            let village = AreaCode::parse(&args.village)?;
            anyhow::ensure!(
                village.level() == AreaLevel::Village,
                "--village must be a 12-digit village code"
            );
            // Parsed locally only to catch typos early; the service checks it again.
            ResidentId::parse(&args.resident_id)?;
            let req = household_request(
                args.request_id
                    .unwrap_or_else(|| format!("fupinctl-{}", uuid::Uuid::now_v7())),
                Household {
                    resident_id: args.resident_id,
                    name: args.name,
                    phone: args.phone.unwrap_or_default(),
                    village_code: args.village.clone(),
                    poor_household_number: args.poor_number.unwrap_or_default(),
                    household_borrows_uses_repays: true,
                },
                &args.amount,
                args.term,
                args.purpose,
                args.description.unwrap_or_default(),
            );
            let t = village_staff_token(g, &args.village)?;
            let app = submit(g, &t, req)
                .await
                .map_err(|s| anyhow::anyhow!(grpc::describe(&s)))?;
            crate::print_line(format_args!("{app:#?}"))?;
        }
        IntakeCommand::Get { id } => {
            let t = token::mint(
                &token::signer(g)?,
                &token::default_subject(Role::DistrictStaff, DISTRICT),
                Role::DistrictStaff,
                DISTRICT,
                None,
                TOKEN_TTL_SECS,
            )?;
            let mut client = IntakeServiceClient::new(grpc::channel(g).await?);
            let app = client
                .get_application(grpc::request(GetApplicationRequest { id }, &t)?)
                .await
                .map_err(|s| anyhow::anyhow!(grpc::describe(&s)))?
                .into_inner();
            crate::print_line(format_args!("{app:#?}"))?;
        }
    }
    Ok(())
}

pub fn village_staff_token(g: &Global, village: &str) -> anyhow::Result<String> {
    token::mint(
        &token::signer(g)?,
        &token::default_subject(Role::VillageStaff, village),
        Role::VillageStaff,
        village,
        None,
        TOKEN_TTL_SECS,
    )
}

pub fn household_request(
    request_id: String,
    household: Household,
    amount: &str,
    term_months: u32,
    purpose: Purpose,
    project_description: String,
) -> SubmitApplicationRequest {
    SubmitApplicationRequest {
        request_id,
        applicant: Some(pb::submit_application_request::Applicant::Household(
            household,
        )),
        kind: ApplicantKind::Household as i32,
        amount: Some(Money {
            amount: amount.to_owned(),
        }),
        term_months,
        purpose: purpose as i32,
        project_description,
    }
}

/// One SubmitApplication call; the status is returned as it is so callers can retry.
pub async fn submit(
    g: &Global,
    token: &str,
    req: SubmitApplicationRequest,
) -> Result<Application, tonic::Status> {
    let channel = grpc::channel(g)
        .await
        .map_err(|e| tonic::Status::unavailable(format!("{e:#}")))?;
    let req = grpc::request(req, token).map_err(|e| tonic::Status::internal(e.to_string()))?;
    IntakeServiceClient::new(channel)
        .submit_application(req)
        .await
        .map(tonic::Response::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_parse_in_several_spellings() {
        assert_eq!(parse_purpose("breeding"), Ok(Purpose::Breeding));
        assert_eq!(parse_purpose("rural-tourism"), Ok(Purpose::RuralTourism));
        assert_eq!(parse_purpose("RURAL_TOURISM"), Ok(Purpose::RuralTourism));
        assert_eq!(parse_purpose("PURPOSE_PLANTING"), Ok(Purpose::Planting));
        assert_eq!(parse_purpose("housing"), Ok(Purpose::Housing));
        assert!(parse_purpose("unspecified").is_err());
        assert!(parse_purpose("gambling").is_err());
    }
}
