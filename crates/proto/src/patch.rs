//! PATCH fields that tell "leave it" from "clear it": `expires_at: null` removes an expiry,
//! `instance_role: null` takes the role away, while a field left out changes nothing.

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Error, Serialize, Serializer};

/// One field of a PATCH body. Declare it with
/// `#[serde(default, skip_serializing_if = "Patch::is_keep")]`: [`Patch::Keep`] is then left
/// out of the body, [`Patch::Clear`] is sent as `null` and [`Patch::Set`] as the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// Not sent: the server keeps what it has.
    #[default]
    Keep,
    /// Sent as the value.
    Set(T),
    /// Sent as `null`: the server removes the value.
    Clear,
}

impl<T> Patch<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }

    /// `Some(v)` sets, `None` clears.
    pub fn set_or_clear(value: Option<T>) -> Self {
        value.map_or(Patch::Clear, Patch::Set)
    }

    /// `None` to keep, `Some(None)` to clear, `Some(Some(v))` to set: the double `Option` the
    /// server's own request types use.
    pub fn into_option(self) -> Option<Option<T>> {
        match self {
            Patch::Keep => None,
            Patch::Set(v) => Some(Some(v)),
            Patch::Clear => Some(None),
        }
    }

    pub fn as_ref(&self) -> Patch<&T> {
        match self {
            Patch::Keep => Patch::Keep,
            Patch::Set(v) => Patch::Set(v),
            Patch::Clear => Patch::Clear,
        }
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Set(v) => v.serialize(s),
            Patch::Clear => s.serialize_none(),
            // Sending `null` here would clear the field: refuse rather than guess.
            Patch::Keep => Err(S::Error::custom(
                "Patch::Keep must be skipped (#[serde(skip_serializing_if = \"Patch::is_keep\")])",
            )),
        }
    }
}

/// A field that is present: `null` is [`Patch::Clear`]. An absent field is [`Patch::Keep`]
/// through `#[serde(default)]`.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Patch::set_or_clear)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Body {
        #[serde(default, skip_serializing_if = "Patch::is_keep")]
        expires_at: Patch<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    }

    #[test]
    fn keep_is_left_out_clear_is_null_set_is_the_value() {
        let body = |expires_at| Body {
            expires_at,
            name: None,
        };
        for (patch, wanted) in [
            (Patch::Keep, json!({})),
            (Patch::Clear, json!({"expires_at": null})),
            (
                Patch::Set("2030-01-01T00:00:00Z".to_owned()),
                json!({"expires_at": "2030-01-01T00:00:00Z"}),
            ),
        ] {
            let b = body(patch);
            assert_eq!(serde_json::to_value(&b).unwrap(), wanted);
            // And back: what is sent is what the server reads.
            assert_eq!(serde_json::from_value::<Body>(wanted).unwrap(), b);
        }
    }

    #[test]
    fn an_unskipped_keep_is_an_error_not_a_null() {
        #[derive(Serialize)]
        struct Careless {
            field: Patch<u32>,
        }
        assert!(serde_json::to_value(Careless { field: Patch::Keep }).is_err());
        assert_eq!(
            serde_json::to_value(Careless {
                field: Patch::Clear
            })
            .unwrap(),
            json!({"field": null})
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(Patch::set_or_clear(Some(1)), Patch::Set(1));
        assert_eq!(Patch::<u8>::set_or_clear(None), Patch::Clear);
        assert_eq!(Patch::<u8>::Keep.into_option(), None);
        assert_eq!(Patch::<u8>::Clear.into_option(), Some(None));
        assert_eq!(Patch::Set(2).into_option(), Some(Some(2)));
        assert_eq!(Patch::Set(3).as_ref(), Patch::Set(&3));
    }
}
