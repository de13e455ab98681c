//! The directory content of the cross-backend suites: the demo forest, the child-domain
//! leftovers, an OCS 2007-layout pool, and generated bulk users.

use ocsh::directory::{Entry, ldif};
use ocsh::ocs::dn::same_dn;

/// The built-in demo forest (docs/demo-forest.md).
pub const DEMO: &str = include_str!("../../../src/directory/demo-forest.ldif");

/// The collapsed child domain's pool tree the OU=Migrated users point at.
pub const LEFTOVERS: &str = include_str!("../../fixtures/child-domain-leftovers.ldif");

/// The two demo users that servers checking DN syntax and references refuse by design:
/// Brian Walsh (home server on the removed pool00) and Hannah Schmidt (an FQDN where a DN
/// belongs).
pub const REFUSED_BY_SERVERS: [&str; 2] = [
    "CN=Brian Walsh,OU=Sales,DC=example,DC=com",
    "CN=Hannah Schmidt,OU=Engineering,DC=example,DC=com",
];

/// The domain.
pub const BASE: &str = "DC=example,DC=com";

/// The R2 pools' container.
pub const R2_POOLS: &str = "CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com";

/// The OCS 2007-layout pool added to the demo forest.
pub const POOL07: &str =
    "CN=pool07,CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,DC=example,DC=com";

/// Where the generated users live.
pub const BULK_OU: &str = "OU=Bulk,DC=example,DC=com";

/// How many users [`bulk`] generates, and how many of them are enabled on pool02 (every
/// tenth).
pub const BULK_USERS: usize = 1200;
pub const BULK_ON_POOL02: usize = BULK_USERS / 10;

/// The home-server DN (`CN=LC Services,CN=Microsoft,<pool>`) of an R2 pool of the demo.
pub fn r2_home(pool: &str) -> String {
    format!("CN=LC Services,CN=Microsoft,CN={pool},{R2_POOLS}")
}

/// The home-server DN of pool07.
pub fn pool07_home() -> String {
    format!("CN=LC Services,CN=Microsoft,{POOL07}")
}

/// The leftovers as Samba AD accepts them: AD's `domain` class is abstract ("Failed to
/// find a structural class"), its structural class for a `DC=` object is `domainDNS`.
/// OpenLDAP's test schema has no `domainDNS`, so it gets the file as it is.
pub fn leftovers_for_samba() -> String {
    LEFTOVERS
        .lines()
        .map(|l| {
            if l == "objectClass: domain" {
                "objectClass: domainDNS"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The OCS 2007 layout (`CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,<domain>`) with
/// one pool, pool07, and its `CN=Microsoft`/`CN=LC Services` children. The server
/// setups create the containers already (they come back as "already exists").
pub fn pool07() -> String {
    format!(
        "dn: CN=System,{BASE}
objectClass: top
objectClass: container
cn: System

dn: CN=Microsoft,CN=System,{BASE}
objectClass: top
objectClass: container
cn: Microsoft

dn: CN=RTC Service,CN=Microsoft,CN=System,{BASE}
objectClass: top
objectClass: msRTCSIP-Service
cn: RTC Service

dn: CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,{BASE}
objectClass: top
objectClass: msRTCSIP-Pools
cn: Pools

dn: {POOL07}
objectClass: top
objectClass: msRTCSIP-Pool
cn: pool07
dNSHostName: pool07.example.com
msRTCSIP-PoolDisplayName: pool07
msRTCSIP-PoolType: 5
msRTCSIP-PoolVersion: 3
msRTCSIP-BackEndServer: pool07.example.com\\rtc

dn: CN=Microsoft,{POOL07}
objectClass: top
objectClass: container
cn: Microsoft

dn: CN=LC Services,CN=Microsoft,{POOL07}
objectClass: top
objectClass: msRTCSIP-PoolService
cn: LC Services
"
    )
}

/// The sAMAccountName of bulk user `i` (1-based): `bulk0001` ...
pub fn bulk_sam(i: usize) -> String {
    format!("bulk{i:04}")
}

/// OU=Bulk with [`BULK_USERS`] users; every tenth is enabled on pool02.
pub fn bulk() -> String {
    let mut out =
        format!("dn: {BULK_OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Bulk\n\n");
    let pool02 = r2_home("pool02");
    for i in 1..=BULK_USERS {
        let sam = bulk_sam(i);
        out.push_str(&format!(
            "dn: CN=Bulk User {i:04},{BULK_OU}
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: Bulk User {i:04}
sn: User {i:04}
givenName: Bulk
displayName: Bulk User {i:04}
sAMAccountName: {sam}
userPrincipalName: {sam}@example.com
mail: {sam}@example.com
userAccountControl: 512
"
        ));
        if i % 10 == 0 {
            out.push_str(&format!(
                "proxyAddresses: SIP:{sam}@example.com
msRTCSIP-UserEnabled: TRUE
msRTCSIP-PrimaryUserAddress: sip:{sam}@example.com
msRTCSIP-PrimaryHomeServer: {pool02}
msRTCSIP-OptionFlags: 256
"
            ));
        }
        out.push('\n');
    }
    out
}

/// The demo forest's entries without those whose DN is in `drop`.
pub fn demo_without(drop: &[&str]) -> Vec<Entry> {
    ldif::parse(DEMO, "demo forest")
        .unwrap()
        .into_iter()
        .filter(|e| !drop.iter().any(|d| same_dn(d, &e.dn)))
        .collect()
}

/// The users of the demo forest (and of `extra`) whose home server is `home`.
pub fn homed_on(entries: &[Entry], home: &str) -> usize {
    entries
        .iter()
        .filter(|e| {
            e.get("msRTCSIP-PrimaryHomeServer")
                .iter()
                .any(|v| same_dn(v, home))
        })
        .count()
}
