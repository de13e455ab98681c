//! Differential test of the filter evaluator: the same LDIF in the embedded directory and
//! in a fresh OpenLDAP slapd, the same filters through `ocsh::directory::search_all`, and
//! the same set of DNs required from both.
//!
//! The LDIF: what `tests/servers/openldap-setup.sh` puts in its base (`DIR/base.ldif`),
//! the child-domain leftovers, and the demo forest without the two users OpenLDAP refuses
//! (and without the entries the base has already). So both directories hold exactly the
//! same entries.
//!
//! The slapd test is `openldap::differential::...`: selected with `OCSH_TEST_BACKENDS`
//! like the behaviour suite; a slapd that cannot start fails it under `CI=true` and
//! ignores it otherwise (`support::harness::own_server`).
//!
//! Where OpenLDAP deliberately differs from Active Directory, and the embedded backend
//! follows AD (verified against Samba AD), the filter is not in the differential list but
//! in [`embedded_follows_ad_where_openldap_differs`].
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use ocsh::directory::{
    Directory, DirectorySpec, EmbeddedDirectory, Entry, SearchRequest, ldif, search_all,
};
use ocsh::ocs::dn::{normalize, same_dn};

use crate::support;
use crate::support::fixtures::{self, BASE};
use crate::support::{Server, say, timed};

/// The filters both directories must answer alike, each with whether it must match
/// something (so that two empty answers do not pass for agreement).
///
/// slapd 2.5 implements AD's bitwise matching rules (`integerBitAndMatch`
/// 1.2.840.113556.1.4.803 and `integerBitOrMatch` .804 are built in), checked here: they
/// are in the list. `>=`/`<=` on msRTCSIP-OptionFlags need an ORDERING rule, which the
/// lab schema lacks; [`add_ordering_to_option_flags`] adds AD's behaviour to this slapd.
const FILTERS: &[(&str, bool)] = &[
    // equality on strings, any case
    ("(sAMAccountName=jdoe)", true),
    ("(sAMAccountName=JDOE)", true),
    ("(cn=jane doe)", true),
    ("(mail=Jane.Doe@Example.COM)", true),
    ("(userPrincipalName=TBECKER@EXAMPLE.COM)", true),
    (
        "(msRTCSIP-PrimaryUserAddress=SIP:Thomas.Becker@example.com)",
        true,
    ),
    ("(proxyAddresses=sip:GRACE.HOPKINS@example.com)", true),
    ("(dNSHostName=POOL03.FABRIKAM.COM)", true),
    ("(msRTCSIP-DomainName=Example.COM)", true),
    ("(cn=Doe\\2c Jane)", true),
    ("(cn=J\u{c9}R\u{d4}ME M\u{dc}LLER)", true),
    ("(objectClass=msRTCSIP-Pool)", true),
    ("(objectClass=MSRTCSIP-POOL)", true),
    ("(objectClass=organizationalUnit)", true),
    // Booleans (upper case, as stored; see the AD-only test for lower case)
    ("(msRTCSIP-UserEnabled=TRUE)", true),
    ("(msRTCSIP-UserEnabled=FALSE)", true),
    ("(msRTCSIP-FederationEnabled=TRUE)", true),
    ("(msRTCSIP-InternetAccessEnabled=FALSE)", true),
    // integers
    ("(msRTCSIP-OptionFlags=256)", true),
    ("(msRTCSIP-OptionFlags=385)", true),
    ("(userAccountControl=66050)", true),
    ("(msRTCSIP-PoolType=10)", true),
    ("(msRTCSIP-OptionFlags~=257)", true),
    // DN-valued attributes, any case and spacing
    (
        "(msRTCSIP-PrimaryHomeServer=cn=lc services,cn=microsoft,cn=pool01,cn=pools,cn=rtc service,cn=services,cn=configuration,dc=example,dc=com)",
        true,
    ),
    (
        "(msRTCSIP-PrimaryHomeServer=CN=LC Services, CN=Microsoft, CN=pool02, CN=Pools, CN=RTC Service, CN=Services, CN=Configuration, DC=example, DC=com)",
        true,
    ),
    (
        "(msRTCSIP-PrimaryHomeServer=CN=LC SERVICES,CN=MICROSOFT,CN=OCSPOOL-CHILD,CN=POOLS,CN=RTC SERVICE,CN=SERVICES,CN=CONFIGURATION,DC=CHILD,DC=EXAMPLE,DC=COM)",
        true,
    ),
    (
        "(msRTCSIP-PrimaryHomeServer=CN=pool02,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com)",
        true,
    ),
    // A DN-valued attribute has no substring matching, in AD (and Samba) as in OpenLDAP:
    // a wildcard there matches nothing.
    ("(msRTCSIP-PrimaryHomeServer=*pool01*)", false),
    // presence
    ("(msRTCSIP-Line=*)", true),
    ("(msRTCSIP-PrimaryUserAddress=*)", true),
    ("(objectClass=*)", true),
    ("(!(msRTCSIP-UserEnabled=*))", true),
    // substrings: initial, any, final, all three, on multi-valued and non-ASCII values
    ("(sAMAccountName=j*)", true),
    ("(mail=*@FABRIKAM.com)", true),
    ("(displayName=*feather*)", true),
    ("(cn=a*k*m)", true),
    ("(cn=*\\2c*)", true),
    ("(msRTCSIP-PrimaryUserAddress=sip:*@fabrikam.com)", true),
    ("(proxyAddresses=smtp:*)", true),
    ("(givenName=J\u{e9}r*)", true),
    // ordering on msRTCSIP-OptionFlags
    ("(msRTCSIP-OptionFlags>=300)", true),
    ("(msRTCSIP-OptionFlags<=256)", true),
    (
        "(&(msRTCSIP-OptionFlags>=257)(msRTCSIP-OptionFlags<=384))",
        true,
    ),
    // AD's bitwise matching rules
    ("(msRTCSIP-OptionFlags:1.2.840.113556.1.4.803:=256)", true),
    ("(msRTCSIP-OptionFlags:1.2.840.113556.1.4.803:=257)", true),
    ("(msRTCSIP-OptionFlags:1.2.840.113556.1.4.804:=129)", true),
    ("(msRTCSIP-OptionFlags:1.2.840.113556.1.4.804:=512)", true),
    (
        "(!(msRTCSIP-OptionFlags:1.2.840.113556.1.4.803:=256))",
        true,
    ),
    ("(userAccountControl:1.2.840.113556.1.4.803:=2)", true),
    // and, or, not
    (
        "(|(sAMAccountName=jdoe)(sAMAccountName=tbecker)(mail=isabel.cruz@fabrikam.com))",
        true,
    ),
    (
        "(&(objectClass=user)(msRTCSIP-UserEnabled=TRUE)(!(msRTCSIP-FederationEnabled=TRUE)))",
        true,
    ),
    ("(&(objectClass=user)(!(msRTCSIP-UserEnabled=*)))", true),
    (
        "(&(objectClass=user)(|(msRTCSIP-OptionFlags=384)(msRTCSIP-Line=*))(!(ou=*)))",
        true,
    ),
    ("(!(objectClass=user))", true),
    ("(&)", true),
    ("(|)", false),
];

/// Makes `>=`/`<=` work on msRTCSIP-OptionFlags in this slapd, as they do in AD (Integer
/// syntax is ordered there). `tests/servers/openldap-msrtc-schema.ldif` declares the
/// attribute with EQUALITY integerMatch only, so slapd treats an ordering filter on it as
/// Undefined and matches nothing. The fix belongs in that schema file (ORDERING
/// integerOrderingMatch on the integer attributes); until then this test replaces the
/// definition in the running server's cn=config.
fn add_ordering_to_option_flags(lab: &Server) {
    let admin = "cn=admin,cn=config";
    let schemas = lab.ldapsearch_as(
        admin,
        "cn=schema,cn=config",
        "one",
        "(olcAttributeTypes=*)",
        &["olcAttributeTypes"],
    );
    let (dn, old) = schemas
        .iter()
        .find_map(|e| {
            e.get("olcAttributeTypes")
                .iter()
                .find(|v| v.contains("'msRTCSIP-OptionFlags'"))
                .map(|v| (e.dn.clone(), v.clone()))
        })
        .expect("the lab schema defines msRTCSIP-OptionFlags");
    if old.contains("ORDERING") {
        return;
    }
    let index = old.split('}').next().unwrap().to_string() + "}"; // "{11}"
    let new = old.replace(
        "EQUALITY integerMatch",
        "EQUALITY integerMatch ORDERING integerOrderingMatch",
    );
    lab.ldapmodify_as(
        admin,
        &format!(
            "dn: {dn}\nchangetype: modify\ndelete: olcAttributeTypes\nolcAttributeTypes: {index}\n-\nadd: olcAttributeTypes\nolcAttributeTypes: {new}\n-\n"
        ),
    );
}

/// The base entries the OpenLDAP setup loaded (`DIR/base.ldif`).
fn base_entries(dir: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("base.ldif")).unwrap();
    ldif::parse(&text, "base.ldif").unwrap()
}

/// The normalised DNs `filter` selects in `dir` (subtree of the domain).
async fn dns(dir: &dyn Directory, filter: &str) -> Result<BTreeSet<String>, String> {
    let req = SearchRequest::subtree(BASE, filter);
    let found = search_all(dir, &req).await.map_err(|e| e.to_string())?;
    Ok(found.iter().map(|e| normalize(&e.dn).unwrap()).collect())
}

fn short(set: &BTreeSet<String>) -> String {
    let v: Vec<&str> = set.iter().map(String::as_str).take(6).collect();
    let more = if set.len() > 6 { ", ..." } else { "" };
    format!("[{}{more}]", v.join("; "))
}

/// A fresh slapd with AD's ordering on msRTCSIP-OptionFlags, timed.
fn start_slapd() -> Result<(Server, std::time::Duration), String> {
    let (lab, setup) = timed(Server::openldap);
    let lab = lab?;
    add_ordering_to_option_flags(&lab);
    Ok((lab, setup))
}

fn embedded_and_openldap_select_the_same_entries((lab, setup): &(Server, std::time::Duration)) {
    let setup = *setup;

    // The same entries on both sides.
    let base = base_entries(&lab.dir);
    let mut drop: Vec<&str> = fixtures::REFUSED_BY_SERVERS.to_vec();
    drop.extend(base.iter().map(|e| e.dn.as_str()));
    let demo = fixtures::demo_without(&drop);
    let r = lab.load("child-domain-leftovers.ldif", fixtures::LEFTOVERS);
    assert!(r.refused.is_empty(), "{r:?}");
    let r = lab.load("demo.ldif", &ldif::write(&demo));
    assert!(r.refused.is_empty(), "{r:?}");
    let leftovers = ldif::parse(fixtures::LEFTOVERS, "leftovers").unwrap();
    let mut all = base.clone();
    all.extend(leftovers);
    all.extend(demo);
    let embedded = EmbeddedDirectory::from_ldif(&ldif::write(&all), "differential").unwrap();
    let (mismatches, took) = timed(|| {
        support::block_on(async {
            let server: Arc<dyn Directory> = ocsh::directory::open(
                &DirectorySpec::Ldap(lab.env.ldap_url.clone()),
                &lab.env.ldap_options(),
            )
            .await
            .unwrap();
            // Same content: every entry, by DN.
            let everything = dns(&embedded, "(objectClass=*)").await.unwrap();
            assert_eq!(everything.len(), all.len());
            assert_eq!(
                everything,
                dns(server.as_ref(), "(objectClass=*)").await.unwrap()
            );

            let mut mismatches = Vec::new();
            for (filter, must_match) in FILTERS {
                let here = dns(&embedded, filter).await;
                let there = dns(server.as_ref(), filter).await;
                eprintln!(
                    "{filter}: embedded {:?}, openldap {:?}",
                    here.as_ref().map(BTreeSet::len),
                    there.as_ref().map(BTreeSet::len)
                );
                match (here, there) {
                    (Ok(h), Ok(t)) if h == t => {
                        if *must_match && h.is_empty() {
                            mismatches.push(format!("{filter}: matches nothing on either side"));
                        }
                    }
                    (Ok(h), Ok(t)) => mismatches.push(format!(
                        "{filter}: embedded {} entries, openldap {}\n    only embedded: {}\n    only openldap: {}",
                        h.len(),
                        t.len(),
                        short(&h.difference(&t).cloned().collect()),
                        short(&t.difference(&h).cloned().collect())
                    )),
                    (h, t) => mismatches.push(format!(
                        "{filter}: embedded {:?}, openldap {:?}",
                        h.map(|s| s.len()),
                        t.map(|s| s.len())
                    )),
                }
            }
            mismatches
        })
    });
    say(&format!(
        "differential: slapd setup {:.2} s, {} filters on both sides {:.2} s",
        setup.as_secs_f64(),
        FILTERS.len(),
        took.as_secs_f64()
    ));
    assert!(FILTERS.len() >= 30);
    assert!(
        mismatches.is_empty(),
        "{} of {} filters differ:\n  {}",
        mismatches.len(),
        FILTERS.len(),
        mismatches.join("\n  ")
    );
}

/// Where OpenLDAP differs from AD on purpose, the embedded backend answers as AD does
/// (and as Samba AD does, checked by hand): `objectCategory=person` names the class, a
/// Boolean assertion is case-insensitive, and every entry has a distinguishedName.
/// OpenLDAP has no objectCategory, treats `true` as an invalid Boolean, and keeps
/// distinguishedName out of its entries, so these are not in the differential list.
fn embedded_follows_ad_where_openldap_differs() {
    let dir = ocsh::directory::demo::demo_directory().unwrap();
    support::block_on(async {
        let upper = dns(&dir, "(msRTCSIP-UserEnabled=TRUE)").await.unwrap();
        assert!(!upper.is_empty());
        assert_eq!(
            dns(&dir, "(msRTCSIP-UserEnabled=true)").await.unwrap(),
            upper
        );
        assert_eq!(
            dns(&dir, "(msRTCSIP-UserEnabled=True)").await.unwrap(),
            upper
        );
        assert_eq!(
            dns(&dir, "(objectCategory=person)").await.unwrap(),
            dns(&dir, "(objectClass=person)").await.unwrap()
        );
        assert_eq!(
            dns(&dir, "(distinguishedName=*)").await.unwrap(),
            dns(&dir, "(objectClass=*)").await.unwrap()
        );
        let jane = "CN=Jane Doe,OU=Engineering,DC=example,DC=com";
        let found = dns(
            &dir,
            "(distinguishedName=cn=jane doe,ou=engineering,dc=example,dc=com)",
        )
        .await
        .unwrap();
        assert_eq!(found.len(), 1);
        assert!(same_dn(found.iter().next().unwrap(), jane));
    });
}

/// BUG: the embedded evaluator answers substring filters on DN-valued attributes as if
/// the values were strings. AD has no substring matching for DN syntax (Samba AD and
/// OpenLDAP, checked here, match nothing), so a script tested on an LDIF export selects
/// users that production will not. Found by the differential list above. Fix: in
/// `Filter::matches`, a `Substring` on an attribute for which `is_dn_attribute` holds
/// matches nothing (LDAP's Undefined), as the `:dn` form already does.
fn embedded_dn_valued_attributes_have_no_substring_match() {
    let dir = ocsh::directory::demo::demo_directory().unwrap();
    support::block_on(async {
        for filter in [
            "(msRTCSIP-PrimaryHomeServer=*pool01*)",
            "(msRTCSIP-PrimaryHomeServer=CN=LC Services*)",
        ] {
            let found = dns(&dir, filter).await.unwrap();
            assert!(found.is_empty(), "{filter} matched {}", short(&found));
        }
    });
}

/// The plain tests, and the one that needs its own slapd.
pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    let mut all = plain_trials();
    all.push(support::harness::own_server(
        module_path!(),
        "openldap",
        "embedded_and_openldap_select_the_same_entries",
        start_slapd,
        embedded_and_openldap_select_the_same_entries,
    ));
    all
}

fn plain_trials() -> Vec<libtest_mimic::Trial> {
    vec![
        support::harness::plain(
            module_path!(),
            "embedded_follows_ad_where_openldap_differs",
            embedded_follows_ad_where_openldap_differs,
        ),
        support::harness::plain(
            module_path!(),
            "embedded_dn_valued_attributes_have_no_substring_match",
            embedded_dn_valued_attributes_have_no_substring_match,
        ),
    ]
}
