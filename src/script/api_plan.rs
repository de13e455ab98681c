//! `plan()`: the staged changes as a script sees them. A plan of 100,000 changes is
//! not one Rhai array of maps (the engine's array and map size limits count every nested
//! element, and refuse such a value at about 2,500 changes): it is a snapshot that a
//! script indexes, counts and loops over, each change made into a map only when read.

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::host::HostRef;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// One staged attribute change.
#[derive(Debug, Clone)]
struct Row {
    dn: Rc<str>,
    user: Rc<str>,
    attribute: String,
    before: Vec<String>,
    after: Vec<String>,
}

/// The staged changes when `plan()` was called: `p.len()`, `p[i]`, `for c in p`.
#[derive(Debug, Clone)]
pub struct PlanChanges(Rc<[Row]>);

fn values_dynamic(v: &[String]) -> Dynamic {
    match v {
        [] => Dynamic::UNIT,
        [one] => Dynamic::from(one.clone()),
        many => Dynamic::from_array(many.iter().cloned().map(Dynamic::from).collect()),
    }
}

impl PlanChanges {
    fn map(row: &Row) -> Dynamic {
        let mut m = Map::new();
        m.insert("dn".into(), Dynamic::from(row.dn.to_string()));
        m.insert("user".into(), Dynamic::from(row.user.to_string()));
        m.insert("attribute".into(), Dynamic::from(row.attribute.clone()));
        m.insert("before".into(), values_dynamic(&row.before));
        m.insert("after".into(), values_dynamic(&row.after));
        Dynamic::from_map(m)
    }

    fn get(&self, index: i64) -> Res<Dynamic> {
        let len = self.0.len();
        // A negative index counts from the end, as for Rhai arrays.
        let i = if index < 0 {
            usize::try_from(index.unsigned_abs())
                .ok()
                .and_then(|back| len.checked_sub(back))
        } else {
            usize::try_from(index).ok().filter(|i| *i < len)
        };
        match i.and_then(|i| self.0.get(i)) {
            Some(row) => Ok(PlanChanges::map(row)),
            None => Err(format!(
                "plan index {index} is out of range: the plan has {len} change(s)"
            )
            .into()),
        }
    }
}

impl IntoIterator for PlanChanges {
    type Item = Dynamic;
    type IntoIter = Box<dyn Iterator<Item = Dynamic>>;

    fn into_iter(self) -> Self::IntoIter {
        let rows = self.0;
        Box::new((0..rows.len()).filter_map(move |i| rows.get(i).map(PlanChanges::map)))
    }
}

/// Registers `plan()` and the plan view's methods.
pub fn register(engine: &mut Engine, host: &HostRef) {
    engine.register_type_with_name::<PlanChanges>("PlanChanges");
    engine.register_iterator::<PlanChanges>();
    engine.register_indexer_get(|p: &mut PlanChanges, i: i64| p.get(i));
    engine.register_fn("to_string", |p: &mut PlanChanges| {
        format!("plan of {} change(s)", p.0.len())
    });
    engine.register_fn("to_debug", |p: &mut PlanChanges| {
        format!("PlanChanges({})", p.0.len())
    });
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "plan",
        "The staged changes as they are now, each #{ dn, user, attribute, before, after }: `p.len()`, `p[i]` (negative from the end), `for c in p { ... }`; any size.",
        move || -> PlanChanges {
            let ws = h.ws.borrow();
            let mut rows = Vec::with_capacity(ws.plan().change_count());
            for e in ws.plan().entries() {
                let dn: Rc<str> = Rc::from(e.dn.as_str());
                let user: Rc<str> = Rc::from(e.label.as_str());
                for c in &e.changes {
                    rows.push(Row {
                        dn: dn.clone(),
                        user: user.clone(),
                        attribute: c.attr.clone(),
                        before: c.before.clone(),
                        after: c.after.clone(),
                    });
                }
            }
            PlanChanges(Rc::from(rows))
        }
    );
    crate::doc_fn!(
        engine,
        "len",
        "How many changes the plan view holds.",
        |p: &mut PlanChanges| -> i64 { i64::try_from(p.0.len()).unwrap_or(i64::MAX) }
    );
    crate::doc_fn!(
        engine,
        "is_empty",
        "True when nothing was staged.",
        |p: &mut PlanChanges| -> bool { p.0.is_empty() }
    );
    crate::doc_fn!(
        engine,
        "get",
        "Change number `index` (from 0; negative from the end) as #{ dn, user, attribute, before, after }.",
        |p: &mut PlanChanges, index: i64| -> Res<Dynamic> { p.get(index) }
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::directory::EmbeddedDirectory;
    use crate::plan::Workspace;
    use crate::script::{Sandbox, Session};

    /// A plan of 100,000 changes (20,000 users, five attributes each, staged while the
    /// users are read page by page) is counted, indexed and looped over by a script.
    #[test]
    fn plan_of_100000_changes() {
        let mut ldif =
            String::from("dn: DC=example,DC=com\nobjectClass: domainDNS\ndc: example\n\n");
        for i in 0..20_000 {
            ldif.push_str(&format!(
                "dn: CN=u{i},DC=example,DC=com\nobjectClass: person\nobjectClass: user\ncn: u{i}\nsAMAccountName: u{i}\n\n"
            ));
        }
        let dir = EmbeddedDirectory::from_ldif(&ldif, "generated").unwrap();
        let ws = Workspace::open(Arc::new(dir), Duration::from_secs(60)).unwrap();
        let mut s = Session::new(
            ws,
            rhai::Map::new(),
            &Sandbox::default(),
            Box::new(std::io::sink()),
        );
        let script = r#"
            for u in users_in("DC=example,DC=com") {
                u.set_attr("msRTCSIP-Line", "tel:+14255550100");
                u.set_attr("msRTCSIP-FederationEnabled", "TRUE");
                u.set_attr("msRTCSIP-InternetAccessEnabled", "TRUE");
                u.set_attr("msRTCSIP-ArchivingEnabled", "4");
                u.set_attr("msRTCSIP-OptionFlags", "256");
            }
            let p = plan();
            let n = 0;
            let flags = 0;
            for c in p { n += 1; if c.attribute == "msRTCSIP-OptionFlags" { flags += 1; } }
            `${p.len()} ${n} ${flags} ${p[0].user} ${p[-1].attribute} ${p.get(99999).after} ${p.is_empty()}`
        "#;
        let out = s.run("<test>", script).unwrap().to_string();
        assert_eq!(out, "100000 100000 20000 u0 msRTCSIP-OptionFlags 256 false");
        let err = s.run("<test>", "plan()[100000]").unwrap_err().to_string();
        assert!(
            err.contains("plan index 100000 is out of range: the plan has 100000 change(s)"),
            "{err}"
        );
    }
}
