//! A refused form's errors, in plain words and next to the field they are about. The API answers
//! in its own terms (`permissions[1]: segments are …`); a person needs "“docs read” is not a
//! permission. Write it like documents:read." beside the permissions box, with the rest of what
//! they typed still there.

use crate::error::ApiError;
use std::collections::BTreeMap;

/// One field of a dashboard form, as the API names it and as a person reads it.
pub struct Field {
    /// The API's field name (`permissions`; `permissions[2]` is an item of it).
    pub api: &'static str,
    /// The form's input name, which the template asks [`FormErrors::on`] about.
    pub input: &'static str,
    pub label: &'static str,
    /// For list fields: what one item should look like, said when an item is refused.
    pub item_hint: Option<&'static str>,
}

/// What went wrong, by form input, plus what belongs to no field.
#[derive(Default)]
pub struct FormErrors {
    by_input: BTreeMap<&'static str, Vec<String>>,
    pub general: Vec<String>,
}

impl FormErrors {
    /// `e` placed on `fields`; `items` gives a list field's values as typed, so a refused item
    /// is named by what the person wrote rather than by its index.
    pub fn from_api(e: &ApiError, fields: &[Field], items: impl Fn(&str) -> Vec<String>) -> Self {
        let mut out = Self::default();
        let p = e.problem();
        let Some(errs) = p.errors else {
            out.general.push(p.detail);
            return out;
        };
        for err in errs {
            let (base, index) = split_index(&err.field);
            match fields.iter().find(|f| f.api == base) {
                Some(f) => {
                    let text = match (index, f.item_hint) {
                        (Some(i), Some(hint)) => match items(f.input).get(i) {
                            Some(item) => format!("“{item}” is not valid. {hint}"),
                            None => format!("{} {}.", f.label, err.message),
                        },
                        _ => format!("{} {}.", f.label, err.message),
                    };
                    out.by_input.entry(f.input).or_default().push(text);
                }
                None => out.general.push(format!("{}: {}", err.field, err.message)),
            }
        }
        out
    }

    pub fn one(message: impl Into<String>) -> Self {
        Self {
            general: vec![message.into()],
            ..Self::default()
        }
    }

    pub fn field(input: &'static str, message: impl Into<String>) -> Self {
        let mut out = Self::default();
        out.by_input.insert(input, vec![message.into()]);
        out
    }

    /// `input`'s errors replaced by one message that says it better for this form.
    pub fn replace(&mut self, input: &'static str, message: impl Into<String>) {
        self.by_input.insert(input, vec![message.into()]);
    }

    /// The errors of one input, joined, for the template (empty when there are none).
    pub fn on(&self, input: &str) -> String {
        self.by_input
            .get(input)
            .map(|m| m.join(" "))
            .unwrap_or_default()
    }

    pub fn has(&self, input: &str) -> bool {
        self.by_input.contains_key(input)
    }

    pub fn is_empty(&self) -> bool {
        self.by_input.is_empty() && self.general.is_empty()
    }

    /// Every error, for the summary at the top of the form (read first by a screen reader).
    pub fn all(&self) -> Vec<String> {
        self.general
            .iter()
            .chain(self.by_input.values().flatten())
            .cloned()
            .collect()
    }
}

/// `permissions[2]` → (`permissions`, Some(2)); `ratelimits[0].name` → (`ratelimits`, Some(0)).
fn split_index(field: &str) -> (&str, Option<usize>) {
    match field.split_once('[') {
        Some((base, rest)) => (base, rest.split(']').next().and_then(|i| i.parse().ok())),
        None => (field, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::validate::FieldError;

    #[test]
    fn api_errors_land_on_their_fields_in_plain_words() {
        let fields = [
            Field {
                api: "name",
                input: "name",
                label: "The name",
                item_hint: None,
            },
            Field {
                api: "permissions",
                input: "permissions",
                label: "Permissions",
                item_hint: Some("Write a permission like documents:read."),
            },
        ];
        let e = ApiError::Validation(vec![
            FieldError::new("name", "must be 1 to 100 characters"),
            FieldError::new("permissions[1]", "segments are …"),
            FieldError::new("owner_id", "must be a user id"),
        ]);
        let typed = |input: &str| match input {
            "permissions" => vec!["a:b".to_owned(), "docs read".to_owned()],
            _ => vec![],
        };
        let f = FormErrors::from_api(&e, &fields, typed);
        assert_eq!(f.on("name"), "The name must be 1 to 100 characters.");
        assert_eq!(
            f.on("permissions"),
            "“docs read” is not valid. Write a permission like documents:read."
        );
        assert_eq!(f.general, vec!["owner_id: must be a user id".to_owned()]);
        assert_eq!(f.all().len(), 3);
        assert!(f.has("name") && !f.has("environment"));
    }
}
