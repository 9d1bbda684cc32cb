//! `[dashboard]` and `[dashboard.oidc]`: how people sign in to the dashboard, and its branding.
//! Read and checked at startup, so a wrong issuer or colour fails before anything is served.

use anyhow::bail;
use latchkey_core::Secret;
use serde::Deserialize;
use std::net::IpAddr;

/// The flags and `LATCHKEY_DASHBOARD_*` variables of these sections (see `ServerArgs`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DashboardArgs {
    /// Whether the sign-in page offers email and password; `false` leaves single sign-on (and
    /// portal links) as the only ways in [default: true].
    #[arg(long, env = "LATCHKEY_DASHBOARD_PASSWORD_LOGIN", num_args = 0..=1, default_missing_value = "true")]
    pub dashboard_password_login: Option<bool>,
    /// The product name the dashboard shows instead of "Latchkey" (1–100 characters).
    #[arg(long, env = "LATCHKEY_DASHBOARD_PRODUCT_NAME")]
    pub dashboard_product_name: Option<String>,
    /// The logo the dashboard shows: an absolute https:// URL (http:// only for loopback).
    #[arg(long, env = "LATCHKEY_DASHBOARD_LOGO_URL")]
    pub dashboard_logo_url: Option<String>,
    /// The dashboard's accent colour, `#rrggbb`.
    #[arg(long, env = "LATCHKEY_DASHBOARD_ACCENT_COLOR")]
    pub dashboard_accent_color: Option<String>,
    /// The OpenID Connect provider people sign in with: its issuer URL, https:// (http:// only
    /// for loopback). With --dashboard-oidc-client-id and --dashboard-oidc-client-secret.
    #[arg(long, env = "LATCHKEY_DASHBOARD_OIDC_ISSUER")]
    pub dashboard_oidc_issuer: Option<String>,
    /// The client id the provider gave Latchkey.
    #[arg(long, env = "LATCHKEY_DASHBOARD_OIDC_CLIENT_ID")]
    pub dashboard_oidc_client_id: Option<String>,
    /// The client secret the provider gave Latchkey (prefer the variable to the flag: flags show in `ps`).
    #[arg(
        long,
        env = "LATCHKEY_DASHBOARD_OIDC_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub dashboard_oidc_client_secret: Option<String>,
    /// Whether a verified email that matches no user creates one (in no workspace yet) [default: false].
    #[arg(long, env = "LATCHKEY_DASHBOARD_OIDC_CREATE_USERS", num_args = 0..=1, default_missing_value = "true")]
    pub dashboard_oidc_create_users: Option<bool>,
    /// The provider's name on the sign-in button, "Sign in with <name>" [default: the issuer's host].
    #[arg(long, env = "LATCHKEY_DASHBOARD_OIDC_NAME")]
    pub dashboard_oidc_name: Option<String>,
}

/// `[dashboard]` in `latchkey.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DashboardSection {
    password_login: Option<bool>,
    product_name: Option<String>,
    logo_url: Option<String>,
    accent_color: Option<String>,
    #[serde(default)]
    oidc: OidcSection,
}

/// `[dashboard.oidc]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcSection {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<FileSecret>,
    create_users: Option<bool>,
    name: Option<String>,
}

/// The file's client secret, kept a [`Secret`] from the moment it is read (the section's
/// `Debug` shows `[redacted]`).
#[derive(Debug)]
struct FileSecret(Secret);

impl<'de> Deserialize<'de> for FileSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| FileSecret(Secret::new(s)))
    }
}

/// The dashboard's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardSettings {
    /// The email and password form; `false` hides it and refuses `POST /login`.
    pub password_login: bool,
    /// Branding (SPEC §7), for the pages to render; `None`: Latchkey's own.
    pub product_name: Option<String>,
    /// An absolute `https://` URL (or `http://` on loopback).
    pub logo_url: Option<String>,
    /// `#rrggbb`, lowercase.
    pub accent_color: Option<String>,
    /// Single sign-on; `None`: not configured.
    pub oidc: Option<OidcSettings>,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            password_login: true,
            product_name: None,
            logo_url: None,
            accent_color: None,
            oidc: None,
        }
    }
}

/// `[dashboard.oidc]`, checked. `Debug` never shows the client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// As configured (no trailing-slash normalisation: discovery compares it to the provider's
    /// `issuer` exactly, as OpenID Connect Discovery §4.3 asks).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub create_users: bool,
    /// For "Sign in with <name>".
    pub name: String,
}

impl DashboardSettings {
    pub(super) fn load(args: &DashboardArgs, file: DashboardSection) -> anyhow::Result<Self> {
        let product_name = args
            .dashboard_product_name
            .clone()
            .or(file.product_name)
            .map(|n| n.trim().to_owned());
        if let Some(n) = &product_name {
            let chars = n.chars().count();
            if !(1..=100).contains(&chars) || n.chars().any(char::is_control) {
                bail!("[dashboard] product_name must be 1 to 100 characters, without control characters");
            }
        }
        let logo_url = match args.dashboard_logo_url.clone().or(file.logo_url) {
            Some(u) => Some(
                web_url(&u)
                    .map_err(|why| anyhow::anyhow!("[dashboard] logo_url {u:?}: {why}"))?
                    .to_string(),
            ),
            None => None,
        };
        let accent_color = match args.dashboard_accent_color.clone().or(file.accent_color) {
            Some(c) if is_hex_colour(&c) => Some(c.to_ascii_lowercase()),
            Some(c) => bail!("[dashboard] accent_color {c:?} must be a colour like #1f6feb"),
            None => None,
        };
        let o = file.oidc;
        let issuer = args.dashboard_oidc_issuer.clone().or(o.issuer);
        let client_id = args.dashboard_oidc_client_id.clone().or(o.client_id);
        let client_secret = args
            .dashboard_oidc_client_secret
            .clone()
            .map(Secret::new)
            .or(o.client_secret.map(|s| s.0));
        let oidc = match (issuer, client_id, client_secret) {
            (None, None, None) => None,
            (Some(issuer), Some(client_id), Some(client_secret)) => {
                let url = web_url(&issuer)
                    .map_err(|why| anyhow::anyhow!("[dashboard.oidc] issuer {issuer:?}: {why}"))?;
                if url.query().is_some() || url.fragment().is_some() {
                    bail!("[dashboard.oidc] issuer {issuer:?} must have no query or fragment");
                }
                let client_id = client_id.trim().to_owned();
                if client_id.is_empty() {
                    bail!("[dashboard.oidc] client_id is empty");
                }
                if client_secret.expose().is_empty() {
                    bail!("[dashboard.oidc] client_secret is empty");
                }
                let name = match args.dashboard_oidc_name.clone().or(o.name) {
                    Some(n) => {
                        let n = n.trim().to_owned();
                        if !(1..=100).contains(&n.chars().count()) {
                            bail!("[dashboard.oidc] name must be 1 to 100 characters");
                        }
                        n
                    }
                    None => url.host_str().unwrap_or("single sign-on").to_owned(),
                };
                Some(OidcSettings {
                    issuer,
                    client_id,
                    client_secret,
                    create_users: args
                        .dashboard_oidc_create_users
                        .or(o.create_users)
                        .unwrap_or(false),
                    name,
                })
            }
            _ => bail!(
                "[dashboard.oidc] issuer, client_id and client_secret go together \
                 (set all three for single sign-on, or none)"
            ),
        };
        Ok(Self {
            password_login: args
                .dashboard_password_login
                .or(file.password_login)
                .unwrap_or(true),
            product_name,
            logo_url,
            accent_color,
            oidc,
        })
    }
}

/// An absolute `https://` URL with a host, or `http://` to a loopback host (a provider or an
/// asset server on the same machine, as in tests). Nothing else: a browser would send the
/// dashboard's visitors, or Latchkey its client secret, over plain HTTP.
fn web_url(s: &str) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(s.trim()).map_err(|_| "is not an absolute URL")?;
    let host = url.host_str().ok_or("has no host")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password");
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(host) => Ok(url),
        "http" => Err("must be https:// (http:// only for a loopback address)"),
        _ => Err("must be an https:// URL"),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Single sign-on sends people back to `<public URL>/auth/oidc/callback`: without a public URL
/// that is the listen address, which a browser can only reach if it is a real one.
pub(super) fn check_public_url(
    settings: &DashboardSettings,
    public_url: Option<&str>,
    listen: std::net::SocketAddr,
) -> anyhow::Result<()> {
    if settings.oidc.is_some() && public_url.is_none() && listen.ip().is_unspecified() {
        bail!(
            "[dashboard.oidc] single sign-on needs --public-url (LATCHKEY_PUBLIC_URL) when \
             listening on {listen}: the provider sends people back to \
             <public URL>/auth/oidc/callback"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: DashboardArgs, toml_text: &str) -> anyhow::Result<DashboardSettings> {
        DashboardSettings::load(&args, toml::from_str(toml_text).unwrap())
    }

    #[test]
    fn defaults_keep_the_password_form_and_no_single_sign_on() {
        let s = load(DashboardArgs::default(), "").unwrap();
        assert_eq!(s, DashboardSettings::default());
        assert!(s.password_login);
    }

    #[test]
    fn single_sign_on_from_the_file_with_flags_over_it() {
        let file = "password_login = false\n[oidc]\nissuer = \"https://id.example.com\"\n\
                    client_id = \"latchkey\"\nclient_secret = \"s3cret-value\"\n";
        let s = load(DashboardArgs::default(), file).unwrap();
        assert!(!s.password_login);
        let o = s.oidc.clone().unwrap();
        assert_eq!(o.issuer, "https://id.example.com");
        assert_eq!(o.name, "id.example.com", "the issuer's host by default");
        assert!(!o.create_users, "off unless asked for");
        assert!(
            !format!("{s:?}").contains("s3cret-value"),
            "Debug hides the client secret"
        );
        let args = DashboardArgs {
            dashboard_oidc_create_users: Some(true),
            dashboard_oidc_name: Some("Acme SSO".into()),
            dashboard_password_login: Some(true),
            ..Default::default()
        };
        let s = load(args, file).unwrap();
        let o = s.oidc.unwrap();
        assert!(o.create_users && s.password_login);
        assert_eq!(o.name, "Acme SSO");
    }

    #[test]
    fn the_issuer_is_https_or_loopback_and_comes_with_a_client() {
        let with = |issuer: &str| DashboardArgs {
            dashboard_oidc_issuer: Some(issuer.into()),
            dashboard_oidc_client_id: Some("c".into()),
            dashboard_oidc_client_secret: Some("s".into()),
            ..Default::default()
        };
        for ok in [
            "https://id.example.com/realms/x",
            "http://127.0.0.1:9000",
            "http://localhost:9000",
            "http://[::1]:9000",
        ] {
            assert!(load(with(ok), "").is_ok(), "{ok}");
        }
        for bad in [
            "http://id.example.com",
            "ftp://id.example.com",
            "id.example.com",
            "https://id.example.com/?tenant=1",
            "https://user:pw@id.example.com",
        ] {
            let e = load(with(bad), "").unwrap_err().to_string();
            assert!(e.contains("[dashboard.oidc] issuer"), "{bad}: {e}");
        }
        let partial = DashboardArgs {
            dashboard_oidc_issuer: Some("https://id.example.com".into()),
            ..Default::default()
        };
        let e = load(partial, "").unwrap_err().to_string();
        assert!(e.contains("go together"), "{e}");
        let e = load(
            DashboardArgs {
                dashboard_oidc_client_secret: Some("topsecret".into()),
                ..with("http://id.example.com")
            },
            "",
        )
        .unwrap_err();
        assert!(
            !format!("{e:#} {e:?}").contains("topsecret"),
            "errors never show the secret"
        );
    }

    #[test]
    fn branding_is_checked() {
        let s = load(
            DashboardArgs::default(),
            "product_name = \" Acme API \"\nlogo_url = \"https://cdn.example.com/logo.svg\"\n\
             accent_color = \"#1F6FEB\"\n",
        )
        .unwrap();
        assert_eq!(s.product_name.as_deref(), Some("Acme API"));
        assert_eq!(
            s.logo_url.as_deref(),
            Some("https://cdn.example.com/logo.svg")
        );
        assert_eq!(s.accent_color.as_deref(), Some("#1f6feb"));
        for bad in [
            "product_name = \"\"",
            &format!("product_name = \"{}\"", "x".repeat(101)),
            "logo_url = \"/logo.svg\"",
            "logo_url = \"http://cdn.example.com/logo.svg\"",
            "logo_url = \"javascript:alert(1)\"",
            "accent_color = \"red\"",
            "accent_color = \"#12345\"",
            "accent_color = \"#12345g\"",
        ] {
            assert!(load(DashboardArgs::default(), bad).is_err(), "{bad}");
        }
        assert!(load(
            DashboardArgs::default(),
            "logo_url = \"http://127.0.0.1:8000/logo.png\""
        )
        .is_ok());
    }

    #[test]
    fn a_callback_needs_a_reachable_address() {
        let s = load(
            DashboardArgs {
                dashboard_oidc_issuer: Some("https://id.example.com".into()),
                dashboard_oidc_client_id: Some("c".into()),
                dashboard_oidc_client_secret: Some("s".into()),
                ..Default::default()
            },
            "",
        )
        .unwrap();
        let any = "0.0.0.0:8080".parse().unwrap();
        assert!(check_public_url(&s, None, any).is_err());
        assert!(check_public_url(&s, Some("https://keys.example.com"), any).is_ok());
        assert!(check_public_url(&s, None, "127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(check_public_url(&DashboardSettings::default(), None, any).is_ok());
    }
}
