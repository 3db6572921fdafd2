//! Mutual TLS and bank tokens. With `GRPC_TLS_CLIENT_CA` every caller presents a certificate
//! the district's CA signed; a partner bank's certificate names the bank (its `bank_id`) as
//! its subject common name or as a DNS subject alternative name. A bank token is then taken
//! only over a connection whose certificate names that bank: a bank token copied from a log
//! or a proxy is no use without the bank's private key, and one bank's certificate carries no
//! other bank's token.

use tonic::Status;
use x509_cert::{
    Certificate,
    der::{
        Decode, Tag, Tagged,
        asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef},
        oid::db::rfc4519::CN,
    },
    ext::pkix::{SubjectAltName, name::GeneralName},
};

use crate::{Role, auth::Caller};

/// The names a certificate (DER) gives its holder: its subject's common names, then its DNS
/// subject alternative names.
pub fn certificate_names(der: &[u8]) -> Result<Vec<String>, x509_cert::der::Error> {
    let cert = Certificate::from_der(der)?;
    let tbs = &cert.tbs_certificate;
    let mut names = Vec::new();
    for atv in tbs.subject.0.iter().flat_map(|rdn| rdn.0.iter()) {
        if atv.oid != CN {
            continue;
        }
        let v = &atv.value;
        let name = match v.tag() {
            Tag::Utf8String => v.decode_as::<Utf8StringRef<'_>>()?.as_str().to_owned(),
            Tag::PrintableString => v.decode_as::<PrintableStringRef<'_>>()?.as_str().to_owned(),
            Tag::Ia5String => v.decode_as::<Ia5StringRef<'_>>()?.as_str().to_owned(),
            // Teletex, BMP and universal strings: not read, so a bank id written in one does
            // not name the bank (the refusal lists the names that were read).
            _ => continue,
        };
        names.push(name);
    }
    for ext in tbs.extensions.iter().flatten() {
        if ext.extn_id != <SubjectAltName as x509_cert::der::oid::AssociatedOid>::OID {
            continue;
        }
        let san = SubjectAltName::from_der(ext.extn_value.as_bytes())?;
        names.extend(san.0.iter().filter_map(|n| match n {
            GeneralName::DnsName(dns) => Some(dns.as_str().to_owned()),
            _ => None,
        }));
    }
    Ok(names)
}

/// Refuses a bank caller whose connection's client certificate (`leaf`, DER) does not name its
/// bank exactly. Other callers are not bound to their certificates.
#[allow(clippy::result_large_err)]
pub fn bank_named_by(caller: &Caller, leaf: &[u8]) -> Result<(), Status> {
    let (Role::Bank, Some(bank)) = (caller.role, caller.bank_id.as_deref()) else {
        return Ok(());
    };
    let names = certificate_names(leaf).map_err(|e| {
        Status::unauthenticated(crate::error::bounded(format!(
            "the client certificate's names cannot be read ({e})"
        )))
    })?;
    if names.iter().any(|n| n == bank) {
        return Ok(());
    }
    let named = if names.is_empty() {
        "no name".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("{:?}", fupin_kernel::text::excerpt(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Status::unauthenticated(crate::error::bounded(format!(
        "bank token for bank_id {bank:.64}: the connection's client certificate names {named}, \
         not that bank (mutual TLS: a partner bank's certificate names its bank_id as its \
         subject common name or a DNS subject alternative name)"
    ))))
}

#[cfg(test)]
mod tests {
    use fupin_kernel::AreaCode;

    use super::*;

    fn der(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/tls/{name}.pem", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read_to_string(&path).expect(&path);
        pem_rfc7468::decode_vec(pem.as_bytes()).expect("PEM").1
    }

    fn bank(id: &str) -> Caller {
        Caller {
            subject: "core-1".into(),
            role: Role::Bank,
            area: AreaCode::parse("410311").unwrap(),
            bank_id: Some(id.into()),
        }
    }

    #[test]
    fn names_come_from_the_common_name_and_dns_alternative_names() {
        assert_eq!(
            certificate_names(&der("bank")).unwrap(),
            ["abc-luolong-xinqu"]
        );
        assert_eq!(
            certificate_names(&der("bank-san")).unwrap(),
            [
                "ABC Luolong Xinqu core",
                "abc-core.example",
                "abc-luolong-xinqu"
            ]
        );
        // The IP address alternative name is no name.
        assert_eq!(
            certificate_names(&der("server")).unwrap(),
            ["fupin test server", "localhost"]
        );
        assert!(certificate_names(b"not a certificate").is_err());
    }

    // Mutual TLS: a bank token is taken only with a certificate naming its bank exactly.
    #[test]
    fn a_bank_token_needs_a_certificate_naming_its_bank() {
        assert!(bank_named_by(&bank("abc-luolong-xinqu"), &der("bank")).is_ok());
        assert!(bank_named_by(&bank("abc-luolong-xinqu"), &der("bank-san")).is_ok());
        for (id, cert) in [
            ("abc-luolong-xinqu", "client"),
            ("ccb-luolong", "bank"),
            ("ABC-LUOLONG-XINQU", "bank"),
            ("abc-luolong", "bank-san"),
        ] {
            let e = bank_named_by(&bank(id), &der(cert)).expect_err(id);
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
            assert!(
                e.message().contains(&format!("bank_id {id}"))
                    && e.message().contains("subject common name"),
                "{}",
                e.message()
            );
        }
        let e = bank_named_by(&bank("abc-luolong-xinqu"), b"junk").unwrap_err();
        assert!(e.message().contains("cannot be read"), "{}", e.message());
        // Staff are not bound to their certificates.
        let staff = Caller {
            role: Role::DistrictStaff,
            bank_id: None,
            ..bank("x")
        };
        assert!(bank_named_by(&staff, &der("client")).is_ok());
    }
}
