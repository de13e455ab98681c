//! The embedded store's indexes: equality and presence on the attributes that scripts
//! and the workspace look users up by, and the candidate positions a filter can be
//! narrowed to with them.
//!
//! An index only narrows: every candidate is still tested with [`Filter::matches`], so a
//! key only has to be equal whenever the values match (the same equality key the
//! evaluator compares, [`equality_key`]); a filter the indexes cannot narrow falls back
//! to every entry in scope.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::super::Entry;
use super::super::filter::{Filter, equality_key, is_dn_attribute};

/// The attributes with an equality and presence index: user lookups (sAMAccountName,
/// userPrincipalName, mail, proxyAddresses), SIP uniqueness, the user filter's classes,
/// and the replicator's change marker.
const INDEXED: &[&str] = &[
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "proxyAddresses",
    "msRTCSIP-PrimaryUserAddress",
    "objectClass",
    "objectCategory",
    "uSNChanged",
];

/// Where entries are, in positions of the store's entry vector (file order).
#[derive(Debug, Default)]
pub(crate) struct Index {
    attrs: Vec<AttrIndex>,
}

#[derive(Debug)]
struct AttrIndex {
    name: &'static str,
    /// Equality key → positions, ascending. Ordered, for prefix and range filters.
    values: BTreeMap<Box<str>, Vec<u32>>,
    /// Positions that have the attribute, ascending.
    present: Vec<u32>,
}

/// The positions a filter may match: all of them, or these (ascending, no repeats).
#[derive(Debug)]
pub(crate) enum Candidates<'a> {
    /// The indexes cannot narrow this filter.
    All,
    /// Only these positions can match.
    Some(Cow<'a, [u32]>),
}

fn insert_sorted(list: &mut Vec<u32>, pos: u32) {
    if let Err(at) = list.binary_search(&pos) {
        list.insert(at, pos);
    }
}

fn remove_sorted(list: &mut Vec<u32>, pos: u32) {
    if let Ok(at) = list.binary_search(&pos) {
        list.remove(at);
    }
}

/// The ascending union of ascending lists.
fn union(lists: Vec<Cow<'_, [u32]>>) -> Vec<u32> {
    let mut all: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

impl Index {
    /// Indexes `entries`, which sit at positions 0, 1, ...
    pub(crate) fn build<'a>(entries: impl Iterator<Item = &'a Entry>) -> Index {
        let mut index = Index {
            attrs: INDEXED
                .iter()
                .map(|&name| AttrIndex {
                    name,
                    values: BTreeMap::new(),
                    present: Vec::new(),
                })
                .collect(),
        };
        for (pos, entry) in entries.enumerate() {
            let pos = u32::try_from(pos).unwrap_or(u32::MAX);
            for a in &mut index.attrs {
                let values = entry.get(a.name);
                if values.is_empty() {
                    continue;
                }
                // Positions come in ascending order: pushing keeps the lists sorted.
                a.present.push(pos);
                for v in values {
                    let list = a
                        .values
                        .entry(equality_key(a.name, v).into_boxed_str())
                        .or_default();
                    if list.last() != Some(&pos) {
                        list.push(pos);
                    }
                }
            }
        }
        index
    }

    fn attr(&self, name: &str) -> Option<&AttrIndex> {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Follows a change of `attr` at `pos` from `before` to `after`.
    pub(crate) fn update(&mut self, pos: u32, attr: &str, before: &[String], after: &[String]) {
        let Some(a) = self
            .attrs
            .iter_mut()
            .find(|a| a.name.eq_ignore_ascii_case(attr))
        else {
            return;
        };
        for v in before {
            let key = equality_key(a.name, v);
            if let Some(list) = a.values.get_mut(key.as_str()) {
                remove_sorted(list, pos);
                if list.is_empty() {
                    a.values.remove(key.as_str());
                }
            }
        }
        for v in after {
            let list = a
                .values
                .entry(equality_key(a.name, v).into_boxed_str())
                .or_default();
            insert_sorted(list, pos);
        }
        if after.is_empty() {
            remove_sorted(&mut a.present, pos);
        } else {
            insert_sorted(&mut a.present, pos);
        }
    }

    /// The positions `filter` can match, from the indexes alone.
    pub(crate) fn candidates(&self, filter: &Filter) -> Candidates<'_> {
        match filter {
            Filter::And(filters) => {
                // The narrowest operand bounds the whole; the others are tested on it.
                let mut best: Option<Cow<'_, [u32]>> = None;
                for f in filters {
                    if let Candidates::Some(list) = self.candidates(f) {
                        if best.as_ref().is_none_or(|b| list.len() < b.len()) {
                            best = Some(list);
                        }
                    }
                }
                best.map_or(Candidates::All, Candidates::Some)
            }
            Filter::Or(filters) => {
                let mut lists = Vec::with_capacity(filters.len());
                for f in filters {
                    match self.candidates(f) {
                        Candidates::All => return Candidates::All,
                        Candidates::Some(list) => lists.push(list),
                    }
                }
                Candidates::Some(Cow::Owned(union(lists)))
            }
            Filter::Equal { attr, value }
            | Filter::Extensible {
                attr: Some(attr),
                rule: None,
                value,
                dn_attributes: false,
            } => {
                // objectCategory=person names a class, not a DN: matched by the
                // evaluator's own rule.
                if attr.eq_ignore_ascii_case("objectCategory") && !value.contains('=') {
                    return Candidates::All;
                }
                match self.attr(attr) {
                    Some(a) => Candidates::Some(
                        a.values
                            .get(equality_key(a.name, value).as_str())
                            .map_or(Cow::Borrowed(&[][..]), |l| Cow::Borrowed(l.as_slice())),
                    ),
                    None => Candidates::All,
                }
            }
            Filter::Present { attr } => match self.attr(attr) {
                // Every object has a class, listed or not.
                Some(a) if !a.name.eq_ignore_ascii_case("objectClass") => {
                    Candidates::Some(Cow::Borrowed(a.present.as_slice()))
                }
                _ => Candidates::All,
            },
            Filter::Substring {
                attr,
                initial: Some(initial),
                ..
            } if !is_dn_attribute(attr) => match self.attr(attr) {
                Some(a) => {
                    let prefix = equality_key(a.name, initial);
                    let lists = a
                        .values
                        .range::<str, _>((
                            std::ops::Bound::Included(prefix.as_str()),
                            std::ops::Bound::Unbounded,
                        ))
                        .take_while(|(k, _)| k.starts_with(prefix.as_str()))
                        .map(|(_, l)| Cow::Borrowed(l.as_slice()))
                        .collect();
                    Candidates::Some(Cow::Owned(union(lists)))
                }
                None => Candidates::All,
            },
            _ => Candidates::All,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        (0..6)
            .map(|i| {
                let mut e = Entry::new(format!("CN=u{i},DC=x"));
                e.add("objectClass", "user");
                e.add("sAMAccountName", format!("User{i}"));
                if i % 2 == 0 {
                    e.add("mail", format!("u{i}@x.com"));
                }
                e
            })
            .collect()
    }

    fn positions(index: &Index, filter: &str) -> Option<Vec<u32>> {
        match index.candidates(&Filter::parse(filter).unwrap()) {
            Candidates::All => None,
            Candidates::Some(list) => Some(list.into_owned()),
        }
    }

    #[test]
    fn narrows_what_it_can_and_nothing_else() {
        let all = entries();
        let mut index = Index::build(all.iter());
        assert_eq!(positions(&index, "(samaccountname=USER3)"), Some(vec![3]));
        assert_eq!(positions(&index, "(mail=*)"), Some(vec![0, 2, 4]));
        assert_eq!(
            positions(&index, "(sAMAccountName=user*)").unwrap().len(),
            6
        );
        assert_eq!(
            positions(&index, "(|(sAMAccountName=user1)(mail=u4@x.com))"),
            Some(vec![1, 4])
        );
        assert_eq!(
            positions(&index, "(&(objectClass=user)(sAMAccountName=user5))"),
            Some(vec![5])
        );
        assert_eq!(positions(&index, "(sAMAccountName=nobody)"), Some(vec![]));
        for wide in [
            "(objectClass=*)",
            "(cn=u1)",
            "(!(mail=*))",
            "(|(mail=*)(cn=u1))",
            "(objectCategory=person)",
            "(sAMAccountName=*1)",
        ] {
            assert_eq!(positions(&index, wide), None, "{wide}");
        }
        index.update(3, "MAIL", &[], &["new@x.com".into()]);
        index.update(0, "mail", &["u0@x.com".into()], &[]);
        assert_eq!(positions(&index, "(mail=*)"), Some(vec![2, 3, 4]));
        assert_eq!(positions(&index, "(mail=NEW@x.com)"), Some(vec![3]));
        assert_eq!(positions(&index, "(mail=u0@x.com)"), Some(vec![]));
    }
}
