//! Extractors whose rejections speak the platform's error format instead of axum's text.

use axum::extract::{FromRequestParts, Path as AxumPath};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::MomoError;

/// Path parameters; a malformed path (e.g. invalid percent-encoding) is a MoMo 400.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = MomoError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        AxumPath::<T>::from_request_parts(parts, state)
            .await
            .map(|AxumPath(v)| Path(v))
            .map_err(|e| {
                let said = e.body_text();
                let said = said.strip_prefix("Invalid URL: ").unwrap_or(&said);
                MomoError::bad(format!("malformed path: {said}"))
            })
    }
}
