//! A directory entry: a DN and its attributes, names compared case-insensitively.

use serde::Serialize;

/// One attribute of an entry, with the name as the directory spelled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    /// The attribute name (`msRTCSIP-PrimaryUserAddress`).
    pub name: String,
    /// The values, in the order the directory gave them.
    pub values: Vec<String>,
}

/// An entry: DN plus attributes. Values that are not UTF-8 (objectGUID, objectSid) are
/// kept apart as bytes so that a load and a write give back the same LDIF.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Entry {
    /// The DN as the directory gave it.
    pub dn: String,
    attrs: Vec<Attribute>,
    #[serde(skip)]
    binary: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    /// An entry with no attributes.
    pub fn new(dn: impl Into<String>) -> Entry {
        Entry {
            dn: dn.into(),
            attrs: Vec::new(),
            binary: Vec::new(),
        }
    }

    /// The values of `name` (any case), or an empty slice.
    pub fn get(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map_or(&[], |a| a.values.as_slice())
    }

    /// The first value of `name`, if any.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.get(name).first().map(String::as_str)
    }

    /// True when `name` has at least one value (text or binary).
    pub fn has(&self, name: &str) -> bool {
        !self.get(name).is_empty() || !self.get_binary(name).is_empty()
    }

    /// Replaces the values of `name`; an empty `values` removes the attribute.
    pub fn set(&mut self, name: &str, values: Vec<String>) {
        match self
            .attrs
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(name))
        {
            Some(i) if values.is_empty() => {
                self.attrs.remove(i);
            }
            Some(i) => self.attrs[i].values = values,
            None if values.is_empty() => {}
            None => self.attrs.push(Attribute {
                name: name.to_string(),
                values,
            }),
        }
    }

    /// Appends one value to `name`, creating the attribute if needed.
    pub fn add(&mut self, name: &str, value: impl Into<String>) {
        match self
            .attrs
            .iter_mut()
            .find(|a| a.name.eq_ignore_ascii_case(name))
        {
            Some(a) => a.values.push(value.into()),
            None => self.attrs.push(Attribute {
                name: name.to_string(),
                values: vec![value.into()],
            }),
        }
    }

    /// The text attributes in order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attrs
    }

    /// The binary values of `name` (any case), or an empty slice.
    pub fn get_binary(&self, name: &str) -> &[Vec<u8>] {
        self.binary
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// Appends one binary value to `name`.
    pub fn add_binary(&mut self, name: &str, value: Vec<u8>) {
        match self
            .binary
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => v.push(value),
            None => self.binary.push((name.to_string(), vec![value])),
        }
    }

    /// The binary attributes in order.
    pub fn binary_attributes(&self) -> &[(String, Vec<Vec<u8>>)] {
        &self.binary
    }

    /// True when any `objectClass` value equals `class` (any case).
    pub fn is_a(&self, class: &str) -> bool {
        self.get("objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case(class))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove() {
        let mut e = Entry::new("CN=a,DC=x");
        e.add("objectClass", "user");
        e.set("mail", vec!["a@x.com".into()]);
        assert_eq!(e.first("MAIL"), Some("a@x.com"));
        assert!(e.is_a("USER"));
        e.set("Mail", vec![]);
        assert!(!e.has("mail"));
        e.add_binary("objectGUID", vec![0xff, 0]);
        assert!(e.has("objectguid"));
    }
}
