//! Seed 004's "Library File Inclusion": a library a developer downloads from the portal and
//! includes in their project, which encrypts the API key (or session id) with the public
//! key and makes the call in the portal's three parts: the context (API key and public
//! key, SSL, method type, resource URL), the request parameters, the response.
//!
//! The official portal ships `portal-sdk.jar` for Java and a Python `portalsdk` (not on
//! PyPI: integrators vendor the download). Mkoba's are single files that need nothing but
//! their language's own library, with the same names (`APIContext`, `APIMethodType`,
//! `APIRequest`, `APIResponse`), written here: `crates/portal/assets/library/`. They are
//! public (no sign-in; they hold no key) at `/portal/library/{file}`, listed on the M-Pesa
//! page and in the M-Pesa Getting Started guide. `library::*` tests download each and pay
//! with it over HTTP.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::html::Html;

/// A downloadable library: its file name, language, content type and text.
pub(crate) struct Library {
    pub file: &'static str,
    pub language: &'static str,
    pub needs: &'static str,
    content_type: &'static str,
    text: &'static str,
}

/// Every library, in the order the portal lists them.
pub(crate) const LIBRARIES: &[Library] = &[
    Library {
        file: "PortalSDK.java",
        language: "Java",
        needs: "Java 11 or later: <code>import portalsdk.PortalSDK.*;</code> and compile it with your code, <code>javac -d classes PortalSDK.java Main.java</code>",
        content_type: "text/x-java-source; charset=utf-8",
        text: include_str!("../../assets/library/PortalSDK.java"),
    },
    Library {
        file: "portalsdk.py",
        language: "Python",
        needs: "Python 3.8 or later, nothing to install: <code>from portalsdk import APIContext, APIMethodType, APIRequest</code>",
        content_type: "text/x-python; charset=utf-8",
        text: include_str!("../../assets/library/portalsdk.py"),
    },
    Library {
        file: "portalsdk.js",
        language: "JavaScript (Node.js)",
        needs: "Node.js 18 or later, nothing to install: <code>const { APIContext, APIMethodType, APIRequest } = require('./portalsdk');</code>",
        content_type: "text/javascript; charset=utf-8",
        text: include_str!("../../assets/library/portalsdk.js"),
    },
];

/// `GET /portal/library/{file}`: the file, as a download.
pub(crate) async fn download(Path(file): Path<String>) -> Response {
    let Some(library) = LIBRARIES.iter().find(|l| l.file == file) else {
        return crate::not_found().await;
    };
    // The file names are plain ASCII: a header value as they stand.
    let disposition = format!("attachment; filename=\"{}\"", library.file);
    (
        [
            (header::CONTENT_TYPE, library.content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
        ],
        library.text,
    )
        .into_response()
}

/// The M-Pesa page's card listing the libraries.
pub(crate) fn card(h: &mut Html) {
    h.raw(concat!(
        "<section class=\"card\" aria-labelledby=\"library\"><h2 id=\"library\">Library files</h2>",
        "<p>A library encrypts your API key (then, on v2, the session id) with the public key and makes the call: ",
        "set the context (API key and public key, SSL, method type, address, port and path), add the request parameters, ",
        "execute, and read the response. Each is one file that needs nothing but its language; to do without one, see ",
        "<a href=\"/portal/guides/mpesa-develop-without-library\">Develop without library file</a>.</p><ul class=\"rules\">",
    ));
    for l in LIBRARIES {
        h.raw("<li><a download href=\"/portal/library/")
            .text(l.file)
            .raw("\">")
            .text(l.file)
            .raw("</a> (")
            .text(l.language)
            .raw("): ")
            .raw(l.needs)
            .raw("</li>");
    }
    h.raw("</ul><p class=\"hint\">How to use them: <a href=\"/portal/guides/mpesa-getting-started#the-library-file\">M-Pesa: Getting Started</a>.</p></section>");
}
