//! The decision as every front door outside the API hands it on: an [`Identity`] to pass to
//! the protected service, or a [`Rejection`] to answer with (SPEC §10.1).

use crate::credentials::Presented;
use crate::resolve::{Refusal, Resolved, Verified};
use crate::{now, Engine};
use latchkey_core::{Demand, PermissionSet};
use latchkey_proto::ratelimit::Fields;
use latchkey_proto::{Identity, Rejection};

impl Engine {
    /// Verifies presented credentials against a demand; `source` labels the verification
    /// counter (`latchkey_verifications_total{source}`).
    pub async fn check(
        &self,
        presented: &Presented<'_>,
        demand: &Demand<'_>,
        source: &'static str,
    ) -> Result<(Identity, Option<Fields>), Rejection> {
        if presented.is_empty() {
            self.counters.verification("NOT_FOUND", source);
            return Err(Rejection::missing_credential());
        }
        match self.authenticate(presented, demand, false).await {
            Ok(Verified {
                primary,
                pair,
                limits,
            }) => {
                self.record(Some(&primary), "VALID", source, limits.credits_spent);
                if let Some(p) = &pair {
                    self.usage.touch(&p.key, now());
                }
                Ok((identity(&primary, pair.as_ref()), limits.fields()))
            }
            Err(Refusal::Limited(found, report)) => Err(Rejection::Limited(
                self.refused_by_limits(&found, &report, source),
            )),
            Err(Refusal::Denied(found, denial)) => {
                self.record(found.as_ref(), denial.verify_code(), source, 0);
                Err(Rejection::Denied {
                    denial,
                    presented: true,
                })
            }
            Err(Refusal::Unchecked(_)) => Err(Rejection::Unavailable),
        }
    }
}

/// What a credential (or a key + token pair) can do, as a listing.
pub fn listing(primary: &Resolved, pair: Option<&Resolved>) -> PermissionSet {
    let mine = primary.effective().listing();
    match pair {
        Some(p) => mine.intersection(&p.effective().listing()),
        None => mine,
    }
}

/// The identity of a verified credential (the token of a pair is the primary).
pub fn identity(primary: &Resolved, pair: Option<&Resolved>) -> Identity {
    let k = &primary.key;
    Identity {
        user_id: k.owner_id.clone(),
        workspace_id: k.workspace_id.clone(),
        key_id: k.id.clone(),
        token_id: primary.token.as_ref().map(|t| t.id.clone()),
        key_type: k.key_type,
        environment: k.environment,
        permissions: listing(primary, pair),
        name: primary.credential_name().into_owned(),
    }
}
