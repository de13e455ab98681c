//! Pools and the home-server DN that `msRTCSIP-PrimaryHomeServer` must hold.

use serde::Serialize;

use super::OcsError;
use super::dn::{Dn, Rdn};

/// Where a deployment keeps its RTC Service container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PoolLayout {
    /// OCS 2007 R2: `CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,<forest root>`.
    R2,
    /// OCS 2007: `CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,<root domain>`.
    Ocs2007,
}

impl PoolLayout {
    /// The pools container under `root` (a forest root DN such as `DC=example,DC=com`).
    pub fn pools_container(self, root: &str) -> String {
        match self {
            PoolLayout::R2 => {
                format!("CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,{root}")
            }
            PoolLayout::Ocs2007 => format!("CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,{root}"),
        }
    }

    /// Recognises the layout from a pool object's DN (`CN=<pool>,CN=Pools,CN=RTC Service,...`).
    pub fn of_pool_dn(dn: &Dn) -> Option<PoolLayout> {
        let v: Vec<String> = dn
            .rdns()
            .iter()
            .map(|r| r.value.to_ascii_lowercase())
            .collect();
        match v.get(1..5) {
            Some([p, rtc, services, cfg])
                if p == "pools"
                    && rtc == "rtc service"
                    && services == "services"
                    && cfg == "configuration" =>
            {
                Some(PoolLayout::R2)
            }
            Some([p, rtc, ms, sys])
                if p == "pools" && rtc == "rtc service" && ms == "microsoft" && sys == "system" =>
            {
                Some(PoolLayout::Ocs2007)
            }
            _ => None,
        }
    }
}

/// An OCS pool (`msRTCSIP-Pool`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// The pool's CN (`pool01`, or `1:1` in Lync).
    pub name: String,
    /// `dNSHostName`, when the directory has it.
    pub fqdn: Option<String>,
    /// The pool object's DN.
    pub dn: String,
    /// Which container layout the pool lives in.
    pub layout: Option<PoolLayout>,
    /// `msRTCSIP-PoolType` (5 Standard, 10 Enterprise).
    pub pool_type: Option<i64>,
    /// `msRTCSIP-PoolVersion` (3 OCS 2007, 4 R2, 5 Lync 2010).
    pub version: Option<i64>,
    /// `msRTCSIP-BackEndServer`.
    pub backend: Option<String>,
}

impl Pool {
    /// A pool from its object DN; the name is the leaf CN.
    pub fn from_dn(dn: &str, fqdn: Option<String>) -> Result<Pool, OcsError> {
        let parsed = Dn::parse(dn)?;
        let name = parsed
            .rdn()
            .map(|r| r.value.clone())
            .ok_or_else(|| OcsError::InvalidDn {
                dn: dn.to_string(),
                reason: "a pool DN cannot be empty".into(),
            })?;
        Ok(Pool {
            name,
            fqdn,
            dn: dn.to_string(),
            layout: PoolLayout::of_pool_dn(&parsed),
            pool_type: None,
            version: None,
            backend: None,
        })
    }

    /// The DN home servers point at: `CN=LC Services,CN=Microsoft,<pool DN>`.
    pub fn home_server_dn(&self) -> String {
        format!("CN=LC Services,CN=Microsoft,{}", self.dn)
    }

    /// True when `query` names this pool by name, FQDN, pool DN or LC Services DN.
    pub fn is_named_by(&self, query: &str) -> bool {
        let q = query.trim();
        q.eq_ignore_ascii_case(&self.name)
            || self
                .fqdn
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(q))
            || super::dn::same_dn(q, &self.dn)
            || super::dn::same_dn(q, &self.home_server_dn())
    }
}

/// What a `msRTCSIP-PrimaryHomeServer` value turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HomeServerRef<'a> {
    /// The LC Services DN of a known pool: valid.
    Pool(&'a Pool),
    /// Not a DN but a pool's FQDN (or some host name).
    Fqdn(Option<&'a Pool>),
    /// The pool object's own DN instead of its LC Services child.
    PoolObject(&'a Pool),
    /// An LC Services DN whose pool is not known (removed, or another forest's).
    UnknownPool(String),
    /// A DN naming a known pool's name but in the wrong container path.
    WrongPath(&'a Pool),
    /// Some other DN, or text that is not a DN.
    Other,
}

/// Classifies a home-server value against the known pools.
pub fn classify_home_server<'a>(value: &str, pools: &'a [Pool]) -> HomeServerRef<'a> {
    let v = value.trim();
    if let Some(p) = pools
        .iter()
        .find(|p| super::dn::same_dn(v, &p.home_server_dn()))
    {
        return HomeServerRef::Pool(p);
    }
    let Ok(dn) = Dn::parse(v) else {
        return HomeServerRef::Fqdn(
            pools
                .iter()
                .find(|p| p.fqdn.as_deref().is_some_and(|f| f.eq_ignore_ascii_case(v))),
        );
    };
    if dn.rdns().is_empty() {
        return HomeServerRef::Other;
    }
    if !v.contains('=') {
        return HomeServerRef::Fqdn(None);
    }
    if let Some(p) = pools.iter().find(|p| super::dn::same_dn(v, &p.dn)) {
        return HomeServerRef::PoolObject(p);
    }
    let rdns = dn.rdns();
    let is_lc = |r: Option<&Rdn>, want: &str| r.is_some_and(|r| r.value.eq_ignore_ascii_case(want));
    if is_lc(rdns.first(), "LC Services") && is_lc(rdns.get(1), "Microsoft") {
        if let Some(pool_rdn) = rdns.get(2) {
            if let Some(p) = pools
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(&pool_rdn.value))
            {
                return HomeServerRef::WrongPath(p);
            }
            return HomeServerRef::UnknownPool(pool_rdn.value.clone());
        }
    }
    HomeServerRef::Other
}

/// Checks that `value` is a valid home server, naming the problem precisely if not.
pub fn check_home_server<'a>(
    attr: &str,
    value: &str,
    pools: &'a [Pool],
) -> Result<&'a Pool, OcsError> {
    let err = |m: String| OcsError::InvalidHomeServer(format!("{attr} {value:?} {m}"));
    match classify_home_server(value, pools) {
        HomeServerRef::Pool(p) => Ok(p),
        HomeServerRef::Fqdn(Some(p)) => Err(err(format!(
            "is the FQDN of pool {}, not a DN; the home server is its LC Services DN {} (write pool(\"{}\"))",
            p.name,
            p.home_server_dn(),
            p.name
        ))),
        HomeServerRef::Fqdn(None) => Err(err(format!(
            "looks like a host name, not a DN; the home server is the DN of a pool's LC Services object ({})",
            known_pools(pools)
        ))),
        HomeServerRef::PoolObject(p) => Err(err(format!(
            "is the DN of the pool object {}, not of its LC Services object; the home server is {}",
            p.name,
            p.home_server_dn()
        ))),
        HomeServerRef::WrongPath(p) => Err(err(format!(
            "has the wrong container path for pool {}; its LC Services DN is {}",
            p.name,
            p.home_server_dn()
        ))),
        HomeServerRef::UnknownPool(name) => Err(err(format!(
            "names pool {name:?}, which is not a pool of this directory ({})",
            known_pools(pools)
        ))),
        HomeServerRef::Other => Err(err(format!(
            "is not the DN of a pool's LC Services object ({})",
            known_pools(pools)
        ))),
    }
}

/// A short description of a home-server value for reports: the pool's name when it is
/// valid, otherwise what it is (`ocspool-child (no such pool)`, `pool01.example.com (FQDN,
/// not a DN)`).
pub fn describe_home_server(value: &str, pools: &[Pool]) -> String {
    match classify_home_server(value, pools) {
        HomeServerRef::Pool(p) => p.name.clone(),
        HomeServerRef::Fqdn(_) => format!("{} (FQDN, not a DN)", value.trim()),
        HomeServerRef::PoolObject(p) => format!("{} (pool object, not LC Services)", p.name),
        HomeServerRef::WrongPath(p) => format!("{} (wrong container path)", p.name),
        HomeServerRef::UnknownPool(name) => format!("{name} (no such pool)"),
        HomeServerRef::Other => format!("{} (not a pool)", value.trim()),
    }
}

/// Finds a pool by name, FQDN, pool DN or LC Services DN.
pub fn find_pool<'a>(query: &str, pools: &'a [Pool]) -> Result<&'a Pool, OcsError> {
    pools
        .iter()
        .find(|p| p.is_named_by(query))
        .ok_or_else(|| OcsError::UnknownPool {
            name: query.to_string(),
            known: if pools.is_empty() {
                "no pools".into()
            } else {
                pools
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

fn known_pools(pools: &[Pool]) -> String {
    if pools.is_empty() {
        "the directory has no pools".into()
    } else {
        format!(
            "pools: {}",
            pools
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> Vec<Pool> {
        let root = "DC=example,DC=com";
        let mut a = Pool::from_dn(
            &format!("CN=pool01,{}", PoolLayout::R2.pools_container(root)),
            Some("pool01.example.com".into()),
        )
        .unwrap();
        a.pool_type = Some(10);
        let b = Pool::from_dn(
            &format!("CN=pool07,{}", PoolLayout::Ocs2007.pools_container(root)),
            Some("pool07.example.com".into()),
        )
        .unwrap();
        vec![a, b]
    }

    #[test]
    fn home_server_dn_in_both_layouts() {
        let p = pools();
        assert_eq!(
            p[0].home_server_dn(),
            "CN=LC Services,CN=Microsoft,CN=pool01,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com"
        );
        assert_eq!(p[0].layout, Some(PoolLayout::R2));
        assert_eq!(
            p[1].home_server_dn(),
            "CN=LC Services,CN=Microsoft,CN=pool07,CN=Pools,CN=RTC Service,CN=Microsoft,CN=System,DC=example,DC=com"
        );
        assert_eq!(p[1].layout, Some(PoolLayout::Ocs2007));
    }

    #[test]
    fn find_by_every_name() {
        let p = pools();
        for q in [
            "pool01",
            "POOL01",
            "pool01.example.com",
            &p[0].dn.to_lowercase(),
            &p[0].home_server_dn(),
        ] {
            assert_eq!(find_pool(q, &p).unwrap().name, "pool01", "{q}");
        }
        let err = find_pool("pool09", &p).unwrap_err().to_string();
        assert!(
            err.contains("unknown pool \"pool09\"") && err.contains("pool01, pool07"),
            "{err}"
        );
    }

    #[test]
    fn home_server_mistakes_are_named() {
        let p = pools();
        let hs = |v: &str| {
            check_home_server("msRTCSIP-PrimaryHomeServer", v, &p)
                .map(|p| p.name.clone())
                .map_err(|e| e.to_string())
        };
        assert_eq!(hs(&p[1].home_server_dn().to_uppercase()).unwrap(), "pool07");
        assert!(
            hs("pool01.example.com")
                .unwrap_err()
                .contains("FQDN of pool pool01")
        );
        assert!(hs("ocs.example.com").unwrap_err().contains("host name"));
        assert!(hs(&p[0].dn).unwrap_err().contains("pool object pool01"));
        let gone = "CN=LC Services,CN=Microsoft,CN=pool00,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com";
        assert!(hs(gone).unwrap_err().contains("names pool \"pool00\""));
        let wrong = "CN=LC Services,CN=Microsoft,CN=pool01,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com";
        assert!(
            hs(wrong)
                .unwrap_err()
                .contains("wrong container path for pool pool01")
        );
        assert!(
            hs("CN=Users,DC=example,DC=com")
                .unwrap_err()
                .contains("not the DN of a pool")
        );
    }
}
