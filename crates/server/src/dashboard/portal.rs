//! Portal links in the browser (SPEC §7): `GET /portal/{secret}` signs the person in, once, and
//! takes them to their keys; the "Back to <host>" link that the pages of such a session show.
//! The decisions are [`crate::service::portal`]'s; this module is their HTML.

use super::session;
use crate::auth::client_ip;
use crate::service::portal::{self, LinkState};
use crate::state::AppState;
use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where a session opened by a portal link goes back to, as its pages show it.
pub struct BackLink {
    pub url: String,
    /// The host (and port, when the URL names one), which is all a person needs to see.
    pub host: String,
}

/// The back link of a stored `return_url`. Checked again here (an http or https URL with a
/// host) so that nothing else ever becomes an `href`, whatever the database holds.
pub fn back_link(return_url: &str) -> Option<BackLink> {
    let url = url::Url::parse(return_url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str().filter(|h| !h.is_empty())?;
    let host = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    Some(BackLink {
        url: url.into(),
        host,
    })
}

#[derive(Template)]
#[template(path = "portal_link.html")]
struct LinkPage<'a> {
    heading: &'a str,
    message: String,
    back: Option<BackLink>,
}

fn page(status: StatusCode, heading: &str, message: String, return_url: Option<&str>) -> Response {
    let back = return_url.and_then(back_link);
    let page = LinkPage {
        heading,
        message,
        back,
    };
    super::pages::with_status(super::pages::render(page), status)
}

/// "example.com", or words for a provider whose link named no return URL.
fn provider(return_url: Option<&str>) -> String {
    return_url
        .and_then(back_link)
        .map_or_else(|| "the product you came from".into(), |b| b.host)
}

/// The answer to a link that does not sign anyone in: 404 for one that never existed, 410 for
/// one used or expired, 403 for a person no longer in the workspace. The same words for a link
/// used a moment ago by someone else as for one that expired: either way, get a new one.
fn refused(state: &LinkState) -> Response {
    match state {
        LinkState::Unknown => page(
            StatusCode::NOT_FOUND,
            "Link not found",
            "This sign-in link does not exist. Go back to the product you came from and open \
             it again."
                .into(),
            None,
        ),
        LinkState::Spent(link) => page(
            StatusCode::GONE,
            "Link used or expired",
            format!(
                "This link has been used or has expired. Go back to {} and open it again.",
                provider(link.return_url.as_deref())
            ),
            link.return_url.as_deref(),
        ),
        LinkState::NoAccess(link) => page(
            StatusCode::FORBIDDEN,
            "No access",
            format!(
                "This link is for a workspace you are no longer a member of. Go back to {} and \
                 ask its administrator for access.",
                provider(link.return_url.as_deref())
            ),
            link.return_url.as_deref(),
        ),
        LinkState::Usable(_) => unreachable!("a usable link is not refused"),
    }
}

fn failed(e: &crate::error::ApiError) -> Response {
    if e.status() == StatusCode::SERVICE_UNAVAILABLE {
        return super::pages::unavailable();
    }
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "You could not be signed in. Go back to the product you came from and open the link \
         again."
            .into(),
        None,
    )
}

/// `GET /portal/{secret}`: uses the link and answers with the session cookie and a redirect
/// to the keys page; any other answer sets no cookie.
pub async fn open(
    State(state): State<AppState>,
    parts: Parts,
    secret: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(secret)) = secret else {
        return refused(&LinkState::Unknown);
    };
    let user_agent = crate::auth::user_agent(&parts.headers);
    let ip = client_ip(&parts, &state);
    let link = match portal::sign_in(&state, &secret, ip, user_agent).await {
        Ok(LinkState::Usable(link)) => link,
        Ok(other) => return refused(&other),
        Err(e) => return failed(&e),
    };
    match session::start_returning_to(
        &state,
        &link.user_id,
        &link.workspace_id,
        link.return_url.as_deref(),
        link.session_ends_by,
        "/keys",
    )
    .await
    {
        Ok(signed_in) => signed_in,
        Err(e) => failed(&e.into()),
    }
}

/// `HEAD /portal/{secret}`: what `GET` would answer, short of using the link. Link checkers
/// and previews send HEAD; none of them may spend a person's link. A usable link answers 200
/// (the page that `GET` redirects from).
pub async fn peek(
    State(state): State<AppState>,
    secret: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(secret)) = secret else {
        return refused(&LinkState::Unknown);
    };
    match portal::check(&state, &secret).await {
        Ok(LinkState::Usable(_)) => StatusCode::OK.into_response(),
        Ok(other) => refused(&other),
        Err(e) => failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_links_show_the_host_and_are_only_http_or_https() {
        let b = back_link("https://app.example.com/settings?tab=keys").unwrap();
        assert_eq!(b.host, "app.example.com");
        assert_eq!(b.url, "https://app.example.com/settings?tab=keys");
        assert_eq!(
            back_link("http://localhost:3000/").unwrap().host,
            "localhost:3000"
        );
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "ftp://example.com/",
            "not a url",
        ] {
            assert!(back_link(bad).is_none(), "{bad}");
        }
        assert_eq!(provider(None), "the product you came from");
        assert_eq!(
            provider(Some("https://shop.example.org/account")),
            "shop.example.org"
        );
    }
}
