//! The provider's branding (`[dashboard] product_name, logo_url, accent_color`): its name in
//! titles and headers, its logo, its colour on buttons and links. The colour arrives as a
//! stylesheet of its own (`/assets/brand.css`) and the logo's origin is added to `img-src`, so
//! the Content-Security-Policy stays free of inline style.

use crate::config::DashboardSettings;

/// What pages show of the brand.
#[derive(Clone, Debug)]
pub struct Brand {
    pub name: String,
    pub logo_url: Option<String>,
}

impl Brand {
    pub fn of(s: &DashboardSettings) -> Self {
        Self {
            name: s
                .product_name
                .clone()
                .unwrap_or_else(|| "Latchkey".to_owned()),
            logo_url: s.logo_url.clone(),
        }
    }
}

/// `#rrggbb` → (r, g, b); `None` for anything else (startup has already refused it).
fn rgb(hex: &str) -> Option<(u8, u8, u8)> {
    let h = hex.strip_prefix('#').filter(|h| h.len() == 6)?;
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// WCAG relative luminance of an sRGB colour.
fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// The brand's stylesheet: the accent for buttons, focus rings and (in light mode) links, with
/// white or near-black text on it, whichever contrasts more. Empty without an accent.
pub fn css(s: &DashboardSettings) -> String {
    let Some((hex, c)) = s
        .accent_color
        .as_deref()
        .and_then(|h| Some((h.to_ascii_lowercase(), rgb(h)?)))
    else {
        return String::new();
    };
    let l = luminance(c);
    // Contrast against white is 1.05 / (l + 0.05); against #111 about (l + 0.05) / 0.056.
    let ink = if 1.05 / (l + 0.05) >= (l + 0.05) / 0.056 {
        "#fff"
    } else {
        "#111"
    };
    // In dark mode a dark accent would be unreadable as link text: links keep the theme's.
    let dark = if l < 0.2 {
        ""
    } else {
        "@media (prefers-color-scheme: dark) { :root { --link: var(--accent); } }\n"
    };
    format!(":root {{ --accent: {hex}; --accent-ink: {ink}; --link: {hex}; }}\n{dark}")
}

/// The dashboard's Content-Security-Policy: nothing inline, nothing from elsewhere but the
/// logo's origin for images.
pub fn csp(s: &DashboardSettings) -> String {
    let logo = s
        .logo_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{logo}; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(accent: Option<&str>, logo: Option<&str>) -> DashboardSettings {
        DashboardSettings {
            accent_color: accent.map(str::to_owned),
            logo_url: logo.map(str::to_owned),
            ..DashboardSettings::default()
        }
    }

    #[test]
    fn the_accent_gets_readable_ink() {
        assert!(
            css(&settings(Some("#AA3300"), None)).contains("--accent: #aa3300; --accent-ink: #fff")
        );
        assert!(css(&settings(Some("#ffe066"), None)).contains("--accent-ink: #111"));
        assert_eq!(css(&settings(None, None)), "");
    }

    #[test]
    fn the_logo_origin_and_nothing_else_is_allowed() {
        let p = csp(&settings(
            None,
            Some("https://cdn.example.com/a/logo.svg?v=2"),
        ));
        assert!(
            p.contains("img-src 'self' data: https://cdn.example.com;"),
            "{p}"
        );
        assert!(!p.contains("unsafe"));
        assert!(csp(&settings(None, None)).contains("img-src 'self' data:;"));
    }
}
