//! The consent flow (OIDC CIBA, reference §2.2): `bc-authorize`, `oauth2/token/`,
//! `oauth2/v1_0/userinfo`. Being written.

use axum::Router;

use crate::MomoState;

/// Routes of the consent flow, mounted under each product prefix.
pub(crate) fn routes() -> Router<MomoState> {
    Router::new()
}
