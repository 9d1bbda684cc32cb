//! `[leaks]`: what a leak report does to a key, and GitHub's secret scanning public keys
//! (SPEC §12.2). The PEMs are parsed at startup, so a pasted key that is not one fails there.

use anyhow::{bail, Context};
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

/// The flags and `LATCHKEY_LEAKS_*` variables of `[leaks]` (see `ServerArgs`). The public keys
/// are TOML only: a list of PEM blocks fits no flag.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LeaksArgs {
    /// What a reported leaked key gets: `revoke` (at once) or `notify` (the `key.leaked` audit
    /// event and webhook only) [default: revoke].
    #[arg(long, env = "LATCHKEY_LEAKS_ACTION")]
    pub leaks_action: Option<LeakAction>,
}

/// What a leak report does to an active key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LeakAction {
    #[default]
    Revoke,
    Notify,
}

impl LeakAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LeakAction::Revoke => "revoke",
            LeakAction::Notify => "notify",
        }
    }
}

/// `[leaks]` in `latchkey.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LeaksSection {
    action: Option<LeakAction>,
    #[serde(default)]
    github_public_keys: Vec<GithubKeyEntry>,
}

/// `[[leaks.github_public_keys]]`: one entry of https://api.github.com/meta/public_keys/secret_scanning.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GithubKeyEntry {
    key_identifier: String,
    pem: String,
}

/// One of GitHub's public keys, as `Github-Public-Key-Identifier` names it.
#[derive(Debug, Clone)]
pub struct GithubPublicKey {
    pub key_identifier: String,
    pub key: VerifyingKey,
}

impl GithubPublicKey {
    /// Parses a `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) P-256 key.
    pub fn from_pem(key_identifier: &str, pem: &str) -> anyhow::Result<Self> {
        if key_identifier.trim().is_empty() {
            bail!("[[leaks.github_public_keys]]: key_identifier must not be empty");
        }
        let key = VerifyingKey::from_public_key_pem(pem.trim()).with_context(|| {
            format!(
                "[[leaks.github_public_keys]] {key_identifier:?}: pem is not an ECDSA P-256 \
                 public key (-----BEGIN PUBLIC KEY-----)"
            )
        })?;
        Ok(Self {
            key_identifier: key_identifier.to_owned(),
            key,
        })
    }
}

/// `[leaks]` as the server uses it.
#[derive(Debug, Clone, Default)]
pub struct LeakSettings {
    pub action: LeakAction,
    /// Empty: `POST /v1/leaks/github` refuses every report (nothing can be verified).
    pub github_public_keys: Vec<GithubPublicKey>,
}

impl LeakSettings {
    pub(super) fn load(args: &LeaksArgs, file: LeaksSection) -> anyhow::Result<Self> {
        let mut keys = Vec::with_capacity(file.github_public_keys.len());
        for e in &file.github_public_keys {
            let k = GithubPublicKey::from_pem(&e.key_identifier, &e.pem)?;
            if keys
                .iter()
                .any(|o: &GithubPublicKey| o.key_identifier == k.key_identifier)
            {
                bail!(
                    "[[leaks.github_public_keys]]: key_identifier {:?} is listed twice",
                    k.key_identifier
                );
            }
            keys.push(k);
        }
        Ok(Self {
            action: args.leaks_action.or(file.action).unwrap_or_default(),
            github_public_keys: keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePublicKey;

    fn section(toml_text: &str) -> anyhow::Result<LeakSettings> {
        let s: LeaksSection = toml::from_str(toml_text)?;
        LeakSettings::load(&LeaksArgs::default(), s)
    }

    #[test]
    fn github_public_keys_are_parsed_at_startup_with_clear_errors() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let pem = p256::ecdsa::VerifyingKey::from(&sk)
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        let ok = section(&format!(
            "action = \"notify\"\n[[github_public_keys]]\nkey_identifier = \"k1\"\npem = '''\n{pem}'''\n"
        ))
        .unwrap();
        assert_eq!(ok.action, LeakAction::Notify);
        assert_eq!(ok.github_public_keys[0].key_identifier, "k1");
        assert_eq!(section("").unwrap().action, LeakAction::Revoke);

        let bad = section("[[github_public_keys]]\nkey_identifier = \"k1\"\npem = \"nope\"\n")
            .unwrap_err();
        assert!(
            format!("{bad:#}").contains("\"k1\": pem is not an ECDSA P-256"),
            "{bad:#}"
        );
        let twice = section(&format!(
            "[[github_public_keys]]\nkey_identifier = \"k1\"\npem = '''{pem}'''\n\
             [[github_public_keys]]\nkey_identifier = \"k1\"\npem = '''{pem}'''\n"
        ))
        .unwrap_err();
        assert!(format!("{twice:#}").contains("listed twice"), "{twice:#}");
        assert!(section("action = \"delete\"").is_err());
    }
}
