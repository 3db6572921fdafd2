//! `fupinctl demo seed`: the demo district's read-model facts, published as the events the
//! credit-rating, risk-control and industry services will publish, plus one demo application
//! submitted through intake when it is running.
//!
//! Everything is deterministic (resident IDs, rating and blacklist entry ids, the application's
//! request id), so running it again re-announces the same facts (same `sequence`, which the
//! consumers' ordering rules treat as nothing new) and intake replays the same application.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{Months, NaiveDate, SecondsFormat, TimeDelta, Utc};
use fupin_kernel::{ResidentId, Uscc, china_date};
use fupin_platform::events::EventBus;
use fupin_proto::{
    industry::v1::EnterpriseQualificationChanged,
    intake::v1::{Household, Purpose, Status, intake_service_client::IntakeServiceClient},
    rating::v1::{
        BlacklistEntryAdded, CreditRatingEffective, CreditVillageStatusChanged, SubjectKind,
    },
    risk::v1::NplThresholdExceeded,
};
use uuid::Uuid;

use crate::{Global, grpc, intake_cmd, token};

const SOURCE: &str = "/fupin/demo-seed";
const DISTRICT: &str = "410311";
const POLICY_VERSION: &str = "luolong-2026.1";
/// The credit village: uplift of the grade's line (+20% per deploy/policy/intake.toml).
const CREDIT_VILLAGE: &str = "410311103201";
/// The town whose NPL ratio is over the threshold: lending there is suspended (R-RK-9).
const SUSPENDED_TOWN: &str = "410311101";
/// The demo application's request ids are this and the attempt's number (see
/// [`submit_demo_application`]).
const APPLICATION_REQUEST_ID: &str = "demo-seed-";
/// Attempts while intake catches up with the ratings, half a second apart.
const ATTEMPTS: u32 = 10;
/// Index in [`HOUSEHOLDS`] of the household whose application is submitted.
const APPLICANT: usize = 2;

/// A demo household: head of household, village, birth date and ID sequence digits.
#[derive(Clone, Copy, Debug)]
pub struct DemoHousehold {
    pub name: &'static str,
    pub village: &'static str,
    pub village_name: &'static str,
    /// YYYYMMDD, aged 30-60 for years to come.
    pub birth: &'static str,
    /// Positions 15-17 of the resident ID.
    pub seq: &'static str,
    /// None for the blacklisted household (no rating announced).
    pub grade: Option<&'static str>,
    pub veto: bool,
}

pub const HOUSEHOLDS: [DemoHousehold; 6] = [
    hh(
        "张建国",
        "410311100201",
        "军屯村",
        "19760312",
        "011",
        Some("AAA"),
        false,
    ),
    hh(
        "李秀英",
        "410311101201",
        "枣园村",
        "19820708",
        "022",
        Some("AA"),
        false,
    ),
    hh(
        "王德明",
        "410311102201",
        "李楼村",
        "19790523",
        "031",
        Some("A"),
        false,
    ),
    hh(
        "赵桂兰",
        "410311103201",
        "诸葛村",
        "19850917",
        "042",
        Some("A"),
        false,
    ),
    hh(
        "刘志强",
        "410311104201",
        "佃庄村",
        "19740130",
        "051",
        Some("B"),
        false,
    ),
    hh(
        "陈玉梅",
        "410311105201",
        "辛店村",
        "19881104",
        "062",
        Some("A"),
        true,
    ),
];
pub const BLACKLISTED: DemoHousehold = hh(
    "杨保国",
    "410311100202",
    "狮子桥村",
    "19800615",
    "071",
    None,
    false,
);

pub const COOPERATIVE_NAME: &str = "洛阳市洛龙区下园村肉牛养殖专业合作社";
/// Village where the demo cooperative is registered (下园村, 李楼镇).
pub const COOPERATIVE_VILLAGE: &str = "410311102203";
/// Registration authority 9 + type 3 (farmers' cooperative), division 410311, organisation code.
const COOPERATIVE_USCC_BODY: &str = "93410311MA0DEM001";

const fn hh(
    name: &'static str,
    village: &'static str,
    village_name: &'static str,
    birth: &'static str,
    seq: &'static str,
    grade: Option<&'static str>,
    veto: bool,
) -> DemoHousehold {
    DemoHousehold {
        name,
        village,
        village_name,
        birth,
        seq,
        grade,
        veto,
    }
}

impl DemoHousehold {
    /// District code + birth date + sequence + the GB 11643 check character.
    pub fn resident_id(&self) -> ResidentId {
        let body = format!("{DISTRICT}{}{}", self.birth, self.seq);
        let check = ResidentId::check_char_for(&body).expect("demo ID bodies are 17 digits");
        ResidentId::parse(&format!("{body}{check}")).expect("demo IDs are valid")
    }

    pub fn town(&self) -> &'static str {
        &self.village[..9]
    }

    pub fn poor_household_number(&self) -> String {
        format!("JD-{}-{}", self.village, self.seq)
    }

    pub fn credit_line(&self) -> &'static str {
        match self.grade {
            Some("AAA") => "50000.00",
            Some("AA") => "30000.00",
            Some("A") => "20000.00",
            _ => "0.00",
        }
    }

    fn household(&self) -> Household {
        Household {
            resident_id: self.resident_id().as_str().to_owned(),
            name: self.name.to_owned(),
            phone: String::new(),
            village_code: self.village.to_owned(),
            poor_household_number: self.poor_household_number(),
            household_borrows_uses_repays: true,
        }
    }

    /// What intake's admission should say about an application of this household.
    fn expectation(&self) -> String {
        match (self.grade, self.veto) {
            (None, _) => "blacklisted (R-CR-10): refused".into(),
            (Some(g), true) => format!("{g} with 三无 veto: refused (R-CR-3)"),
            (Some("B"), _) => "B: not a credit household (R-CR-3)".into(),
            (Some(g), _) if self.town() == SUSPENDED_TOWN => {
                format!(
                    "{g}, line {}: refused, lending suspended in town (R-RK-9)",
                    self.credit_line()
                )
            }
            (Some(g), _) if self.village == CREDIT_VILLAGE => {
                format!(
                    "{g}, line {} +20% in credit village: admissible",
                    self.credit_line()
                )
            }
            (Some(g), _) => format!("{g}, line {}: admissible", self.credit_line()),
        }
    }
}

pub fn cooperative_uscc() -> Uscc {
    let check = Uscc::check_char_for(COOPERATIVE_USCC_BODY).expect("17-character body");
    Uscc::parse(&format!("{COOPERATIVE_USCC_BODY}{check}")).expect("demo USCC is valid")
}

/// A deterministic (version 8) UUID for a demo fact, so re-seeding repeats the same ids.
fn stable_uuid(kind: &str, key: &str) -> Uuid {
    let fnv = |seed: u8| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in [seed]
            .iter()
            .chain(kind.as_bytes())
            .chain(&[0])
            .chain(key.as_bytes())
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    };
    let bytes = ((u128::from(fnv(1)) << 64) | u128::from(fnv(2))).to_be_bytes();
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Publishes events with CloudEvents headers, all in one trace.
struct Publisher {
    bus: EventBus,
    trace_id: String,
    published: usize,
}

impl Publisher {
    async fn publish<M: prost::Name>(&mut self, event: &M, about: &str) -> anyhow::Result<()> {
        let span_id = &Uuid::now_v7().simple().to_string()[16..];
        let traceparent = format!("00-{}-{span_id}-01", self.trace_id);
        let subject = self.bus.subject_for(&M::full_name());
        let (_, seq) = self
            .bus
            .publish_now(event, Some(about), Some(&traceparent))
            .await?;
        self.published += 1;
        println!("  published #{seq:<5} {subject} ({about})");
        Ok(())
    }
}

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// Publish to a NATS server on another machine too (a shared demonstration). Never a
    /// production one: the ratings, blacklist entry and suspension are made up, and intake's
    /// admission decides on them.
    #[arg(long)]
    pub remote: bool,
}

/// The demo's facts are made up, and intake's admission trusts what arrives on the rating,
/// risk and industry subjects: published into a production stream (`docker compose exec intake
/// fupinctl demo seed`, whose NATS_URL is the platform's), they would suspend a real town,
/// blacklist and rate real resident IDs' look-alikes, for the stream's ten years. So the seed
/// goes only to a server on this machine (`cargo xtask up`'s) unless asked for another.
fn check_local(nats_url: &str, remote: bool) -> anyhow::Result<()> {
    if remote {
        return Ok(());
    }
    let addr: async_nats::ServerAddr = nats_url
        .parse()
        .with_context(|| format!("NATS_URL {:?}", fupin_platform::events::redacted(nats_url)))?;
    let host = addr.host().trim_start_matches('[').trim_end_matches(']');
    let local = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        local,
        "NATS at {host} is not on this machine: the demo's ratings, blacklist entry and \
         suspension are made up, and intake's admission would decide on them; pass --remote \
         to seed a shared demonstration (never a production stream)"
    );
    Ok(())
}

pub async fn seed(g: &Global, args: &SeedArgs) -> anyhow::Result<()> {
    check_local(&g.nats_url, args.remote)?;
    let today = china_date(Utc::now());
    let effective_from = today - TimeDelta::days(30);
    // R-CR-5: a rating expires after 12 months (the credit service's default).
    let expires_on = effective_from
        .checked_add_months(Months::new(12))
        .context("rating expiry out of range")?;
    let date = |d: NaiveDate| d.format("%Y-%m-%d").to_string();

    let nats = fupin_platform::events::redacted(&g.nats_url);
    println!(
        "fupinctl: connecting to NATS at {nats} (stream {}, prefix {})",
        g.stream, g.prefix
    );
    let bus = tokio::time::timeout(
        Duration::from_secs(20),
        EventBus::connect(&g.nats_url, &g.prefix, &g.stream, SOURCE),
    )
    .await
    .map_err(|_| anyhow::anyhow!("NATS at {nats} did not answer within 20 s"))??;
    let mut p = Publisher {
        bus,
        trace_id: Uuid::now_v7().simple().to_string(),
        published: 0,
    };

    for h in &HOUSEHOLDS {
        let id = h.resident_id();
        let rating_id = stable_uuid("rating", id.as_str()).to_string();
        let event = CreditRatingEffective {
            rating_id: rating_id.clone(),
            subject_kind: SubjectKind::Household as i32,
            subject_id: id.as_str().to_owned(),
            village_code: h.village.to_owned(),
            grade: h.grade.unwrap_or_default().to_owned(),
            veto: h.veto,
            credit_line: h.credit_line().to_owned(),
            effective_from: date(effective_from),
            expires_on: date(expires_on),
            policy_version: POLICY_VERSION.to_owned(),
            sequence: 1,
        };
        p.publish(&event, &rating_id).await?;
    }
    let village = CreditVillageStatusChanged {
        village_code: CREDIT_VILLAGE.to_owned(),
        credit_village: true,
        effective_from: date(effective_from),
        sequence: 1,
    };
    p.publish(&village, CREDIT_VILLAGE).await?;
    let entry_id = stable_uuid("blacklist", BLACKLISTED.resident_id().as_str()).to_string();
    let blacklist = BlacklistEntryAdded {
        entry_id: entry_id.clone(),
        subject_kind: SubjectKind::Household as i32,
        subject_id: BLACKLISTED.resident_id().as_str().to_owned(),
        reason: "恶意拖欠贷款 (demo)".to_owned(),
        source: "district-service-center".to_owned(),
        listed_on: date(today - TimeDelta::days(10)),
    };
    p.publish(&blacklist, &entry_id).await?;
    let uscc = cooperative_uscc();
    let qualification = EnterpriseQualificationChanged {
        uscc: uscc.as_str().to_owned(),
        name: COOPERATIVE_NAME.to_owned(),
        qualified: true,
        reason: "带贫益贫合作社 (demo)".to_owned(),
        effective_from: date(effective_from),
        sequence: 1,
        area_code: COOPERATIVE_VILLAGE.to_owned(),
    };
    p.publish(&qualification, uscc.as_str()).await?;
    let npl = NplThresholdExceeded {
        area_code: SUSPENDED_TOWN.to_owned(),
        npl_ratio: "0.0600".to_owned(),
        threshold: "0.0500".to_owned(),
        measured_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        sequence: 1,
    };
    p.publish(&npl, SUSPENDED_TOWN).await?;
    println!(
        "fupinctl: published {} events on stream {}",
        p.published, g.stream
    );

    let application = submit_demo_application(g).await;
    print_summary(g, effective_from, expires_on, application.as_ref());
    Ok(())
}

/// What became of the demo application.
struct DemoApplication {
    /// One line for the summary.
    outcome: String,
    /// The application's id, when intake filed it.
    id: Option<String>,
}

impl DemoApplication {
    fn failed(outcome: String) -> Option<Self> {
        Some(Self { outcome, id: None })
    }
}

/// Submits the demo application; `None` when intake is not reachable. Never fails the seed:
/// the events are the essential part, and intake may not be running.
async fn submit_demo_application(g: &Global) -> Option<DemoApplication> {
    let h = &HOUSEHOLDS[APPLICANT];
    let channel = match grpc::channel(g).await {
        Ok(c) => c,
        Err(e) => {
            println!("fupinctl: intake is not reachable ({e:#}); skipped the demo application");
            return None;
        }
    };
    let token = match token::signer(g).and_then(|key| {
        token::mint(
            &key,
            "fupinctl-demo-seed",
            fupin_platform::Role::VillageStaff,
            h.village,
            None,
            600,
        )
    }) {
        Ok(t) => t,
        Err(e) => return DemoApplication::failed(format!("not submitted: {e:#}")),
    };
    let mut client = IntakeServiceClient::new(channel);
    println!(
        "fupinctl: submitting the demo application of {} ({}) to intake at {}",
        h.name, h.village_name, g.intake
    );
    // Intake learns the ratings asynchronously: admission may refuse until it has caught up,
    // and a refusal stays with its request id (R-IN-8). So each attempt has its own id, the
    // same on every run: seeding again replays the earlier attempts and ends on the same
    // application, never a second one.
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        let req = intake_cmd::household_request(
            format!("{APPLICATION_REQUEST_ID}{attempt}"),
            h.household(),
            "20000",
            24,
            Purpose::Breeding,
            "肉牛养殖 (demo)".to_owned(),
        );
        let call = match grpc::request(req, &token) {
            Ok(r) => client.submit_application(r).await,
            Err(e) => return DemoApplication::failed(format!("not submitted: {e:#}")),
        };
        match call {
            Ok(app) => {
                let app = app.into_inner();
                let status = Status::try_from(app.status).map_or("?", |s| s.as_str_name());
                return Some(DemoApplication {
                    outcome: format!(
                        "request {APPLICATION_REQUEST_ID}{attempt}: application {} status {status}",
                        app.id
                    ),
                    id: Some(app.id),
                });
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::Unavailable
                ) =>
            {
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                last = Some(s);
            }
            Err(s) => {
                last = Some(s);
                break;
            }
        }
    }
    let msg = last.map_or_else(|| "unknown error".to_owned(), |s| grpc::describe(&s));
    eprintln!("fupinctl: warning: intake did not accept the demo application: {msg}");
    DemoApplication::failed(format!("not accepted: {msg}"))
}

fn print_summary(
    g: &Global,
    effective_from: NaiveDate,
    expires_on: NaiveDate,
    application: Option<&DemoApplication>,
) {
    println!();
    println!(
        "Demo district 洛龙区 (410311) seeded; ratings effective {effective_from} until {expires_on} (exclusive):"
    );
    println!();
    println!(
        "{:<3} {:<14} {:<10} {:<20} {:<8} what admission should say",
        "#", "village", "", "resident ID", "name"
    );
    let all = HOUSEHOLDS.iter().chain(std::iter::once(&BLACKLISTED));
    for (i, h) in all.enumerate() {
        println!(
            "{:<3} {} {} {:<20} {} {}",
            i + 1,
            h.village,
            pad(h.village_name, 10),
            h.resident_id().masked(),
            pad(h.name, 8),
            h.expectation()
        );
    }
    println!();
    println!("credit village    {CREDIT_VILLAGE} (诸葛村): lines +20%");
    println!("NPL suspension    town {SUSPENDED_TOWN} (白马寺镇): ratio 0.0600 > threshold 0.0500");
    println!(
        "cooperative       {} {COOPERATIVE_NAME} (village {COOPERATIVE_VILLAGE}): qualified",
        cooperative_uscc()
    );
    match application {
        Some(a) => println!("demo application  {}", a.outcome),
        None => println!("demo application  not submitted (intake not running)"),
    }
    println!();
    // As it was called: `target/debug/fupinctl` under `cargo xtask up`, `fupinctl` on a PATH.
    // With the flags this seed was given, so that the commands reach the same intake and
    // stream (NATS_URL may hold a password: it is left to the environment, as said below).
    let mut exe = invoked_as();
    for (flag, value, default) in [
        ("--intake", &g.intake, crate::DEFAULT_INTAKE),
        ("--prefix", &g.prefix, crate::DEFAULT_PREFIX),
        ("--stream", &g.stream, crate::DEFAULT_STREAM),
    ] {
        if value != default {
            exe.push_str(&format!(" {flag} {value}"));
        }
    }
    let exe = exe.as_str();
    let ok = &HOUSEHOLDS[3];
    let suspended = &HOUSEHOLDS[1];
    println!("Try:");
    println!("  {exe} events tail --from-start --timeout-secs 2");
    println!("  {exe} token --role district_staff --area {DISTRICT}");
    println!(
        "  {exe} intake submit --village {} --resident-id {} --name {} --amount 24000 --term 24 \
         --purpose planting --poor-number {}   # credit-village line",
        ok.village,
        ok.resident_id().as_str(),
        ok.name,
        ok.poor_household_number()
    );
    println!(
        "  {exe} intake submit --village {} --resident-id {} --name {} --amount 10000 --term 12 \
         --purpose breeding --poor-number {}   # refused: R-RK-9",
        suspended.village,
        suspended.resident_id().as_str(),
        suspended.name,
        suspended.poor_household_number()
    );
    if let Some(id) = application.and_then(|a| a.id.as_deref()) {
        println!("  {exe} intake get {id}");
    }
    println!(
        "  (intake at {}, stream {}; NATS_URL, INTAKE_ADDR, EVENT_SUBJECT_PREFIX and \
         EVENT_STREAM point elsewhere)",
        g.intake, g.stream
    );
}

/// Left-aligns text whose characters are two columns wide (CJK) in `width` columns.
fn pad(s: &str, width: usize) -> String {
    let cols: usize = s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(cols)))
}

/// This program's name as the user can call it again: the path it was started with, relative
/// to the working directory when it lies below it.
fn invoked_as() -> String {
    let arg0 = std::env::args()
        .next()
        .unwrap_or_else(|| "fupinctl".to_owned());
    let path = std::path::Path::new(&arg0);
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .unwrap_or(arg0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use fupin_kernel::{AreaCode, AreaLevel, AreaRegistry};

    #[test]
    fn the_demo_is_seeded_only_on_this_machine_unless_asked() {
        for local in [
            "nats://127.0.0.1:54222",
            "nats://fupin:secret@localhost:4222",
            "nats://[::1]:4222",
            "127.0.0.1",
        ] {
            assert!(super::check_local(local, false).is_ok(), "{local}");
        }
        for remote in ["nats://fupin:secret@nats:4222", "nats://10.0.0.5:4222"] {
            let e = super::check_local(remote, false).unwrap_err().to_string();
            assert!(e.contains("--remote") && !e.contains("secret"), "{e}");
            assert!(super::check_local(remote, true).is_ok(), "{remote}");
        }
    }

    use super::*;

    fn registry() -> AreaRegistry {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/areas/410311.toml"
        );
        AreaRegistry::load(path).unwrap()
    }

    #[test]
    fn demo_resident_ids_are_valid_adults_of_working_age() {
        let today = china_date(Utc::now());
        let mut ids = HashSet::new();
        for h in HOUSEHOLDS.iter().chain([&BLACKLISTED]) {
            let id = h.resident_id();
            assert_eq!(id.as_str().len(), 18);
            assert_eq!(ResidentId::parse(id.as_str()).unwrap(), id, "re-parses");
            assert!(
                (30..=60).contains(&id.age_on(today)),
                "{} is {}",
                h.name,
                id.age_on(today)
            );
            assert!(ids.insert(id.as_str().to_owned()), "unique");
        }
        // Deterministic: the same household always gets the same number.
        assert_eq!(HOUSEHOLDS[0].resident_id(), HOUSEHOLDS[0].resident_id());
    }

    #[test]
    fn households_live_in_distinct_demo_villages() {
        let reg = registry();
        let mut villages = HashSet::new();
        for h in HOUSEHOLDS.iter().chain([&BLACKLISTED]) {
            let code = AreaCode::parse(h.village).unwrap();
            assert_eq!(code.level(), AreaLevel::Village);
            let area = reg
                .get(&code)
                .unwrap_or_else(|| panic!("{} not in the demo district", h.village));
            assert_eq!(area.name(), h.village_name);
            assert!(villages.insert(h.village));
        }
        for code in [CREDIT_VILLAGE, SUSPENDED_TOWN, COOPERATIVE_VILLAGE] {
            assert!(reg.get(&AreaCode::parse(code).unwrap()).is_some(), "{code}");
        }
        // The demo application must be admissible: not in the suspended town, a credit grade.
        let applicant = &HOUSEHOLDS[APPLICANT];
        assert_ne!(applicant.town(), SUSPENDED_TOWN);
        assert_eq!(applicant.grade, Some("A"));
        assert!(!applicant.veto);
    }

    #[test]
    fn demo_cooperative_uscc_is_valid() {
        let code = cooperative_uscc();
        assert_eq!(Uscc::parse(code.as_str()).unwrap(), code);
        assert_eq!(code.admin_division(), DISTRICT);
        assert!(COOPERATIVE_VILLAGE.starts_with(code.admin_division()));
    }

    #[test]
    fn grades_cover_the_brief_and_lines_follow_policy() {
        let grades: Vec<_> = HOUSEHOLDS
            .iter()
            .map(|h| (h.grade.unwrap(), h.veto))
            .collect();
        assert_eq!(
            grades,
            [
                ("AAA", false),
                ("AA", false),
                ("A", false),
                ("A", false),
                ("B", false),
                ("A", true)
            ]
        );
        assert_eq!(HOUSEHOLDS[0].credit_line(), "50000.00");
        assert_eq!(HOUSEHOLDS[1].credit_line(), "30000.00");
        assert_eq!(HOUSEHOLDS[2].credit_line(), "20000.00");
    }

    #[test]
    fn stable_uuids_are_deterministic_and_distinct() {
        assert_eq!(stable_uuid("rating", "x"), stable_uuid("rating", "x"));
        assert_ne!(stable_uuid("rating", "x"), stable_uuid("blacklist", "x"));
        assert_eq!(stable_uuid("rating", "x").get_version_num(), 8);
    }
}
