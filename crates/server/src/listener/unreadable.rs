//! Answers to a request hyper cannot read, in the dialect of its path.
//!
//! When a request's line or header cannot be parsed (`400`), its target is too long
//! (`414`), or its header is over [`super::ConnectionLimits::header_bytes`] or has more than
//! hyper's hundred fields (`431`), hyper answers by itself, before any of the application
//! runs, and the answer it writes has no body (`connection: close`, `content-length: 0`,
//! `date`). A MoMo or M-Pesa client then sees a status and nothing to read, where every
//! other refusal comes in its API's own error format.
//!
//! [`Unreadable`] sits between hyper and the connection. It keeps the first bytes read
//! after each answer it writes (the next request's line, or the start of it), and when
//! hyper writes one of those bodyless answers, it writes in its place the same status,
//! `connection: close` and `date`, with a body in the format of the path that request
//! line names (the connection is closed after it, as before):
//!
//! * a path with `/ipg/` (M-Pesa's gateways): the gateway's own refusal,
//!   `{"output_error":"…"}`, as for its other refusals before the `INS-*` layer;
//! * the portal, `/_mkoba` and `/metrics`, and bytes that are not a request line at all
//!   (TLS spoken to a plain port, say): plain text;
//! * any other path (MoMo's products, the widget): MTN's gateway refusal,
//!   `{"statusCode":431,"message":"…"}`.
//!
//! The bodies are made by each dialect's own code (`mkoba_momo::error::json`,
//! `mkoba_mpesa::wire::gateway_error`), header fields included. Nothing else is touched:
//! the application's own answers always carry a body or a `content-type`, and any write
//! that is not exactly hyper's shape passes as it is. The cost on a request that is read
//! is a copy of at most [`KEPT`] bytes. A request sent behind another before that one's
//! answer (pipelined) arrives in the same read, so its refusal takes the first one's
//! dialect.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many bytes of a request's start are kept: enough for the longest path the APIs
/// serve (M-Pesa's `/openapi/ipg/v2/vodacomDRC/queryTransactionStatus/`).
pub(super) const KEPT: usize = 96;

/// hyper's answers to a request it could not read, up to their `date` header.
const HYPER_ANSWERS: [(&[u8], u16); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n",
        400,
    ),
    (
        b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n",
        414,
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n",
        431,
    ),
];

/// A connection whose bodyless `400`, `414` and `431` answers from hyper are given a
/// body in the dialect of the request they answer.
pub(super) struct Unreadable<S> {
    io: S,
    /// Whether hyper wrote since the last read: the next bytes read then start a new
    /// request, and are kept in place of the ones before.
    wrote: bool,
    kept: [u8; KEPT],
    kept_len: usize,
    /// How large a header may be, for the `431`'s words.
    header_bytes: usize,
    /// The answer written in place of hyper's, how much of it is out, and the length of
    /// hyper's, which its write reports once all of this one is.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<S> Unreadable<S> {
    pub(super) fn new(io: S, header_bytes: usize) -> Unreadable<S> {
        Unreadable {
            io,
            wrote: true,
            kept: [0; KEPT],
            kept_len: 0,
            header_bytes,
            replacing: None,
        }
    }

    fn keep(&mut self, read: &[u8]) {
        if read.is_empty() {
            return;
        }
        if self.wrote {
            self.wrote = false;
            self.kept_len = 0;
        }
        let take = read.len().min(KEPT - self.kept_len);
        self.kept[self.kept_len..self.kept_len + take].copy_from_slice(&read[..take]);
        self.kept_len += take;
    }

    /// What to write in place of `buf` when it is one of hyper's bodyless answers.
    fn replacement(&self, buf: &[u8]) -> Option<Vec<u8>> {
        let (head, status) = HYPER_ANSWERS
            .iter()
            .find(|(head, _)| buf.starts_with(head))?;
        // Then only `date: …` and the empty line.
        let rest = &buf[head.len()..];
        let date = rest.strip_suffix(b"\r\n")?;
        if !(date.is_empty() || date.starts_with(b"date: ") && date.ends_with(b"\r\n"))
            || date.windows(2).filter(|w| w == b"\r\n").count() > 1
        {
            return None;
        }
        let (fields, body) = answer(
            *status,
            dialect(&self.kept[..self.kept_len]),
            self.header_bytes,
        )?;
        let status_line = &head[..head.iter().position(|b| *b == b'\r')?];
        let mut out = Vec::with_capacity(256 + body.len());
        out.extend_from_slice(status_line);
        out.extend_from_slice(b"\r\nconnection: close\r\n");
        for (name, value) in &fields {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        Some(out)
    }
}

/// Whose format a request's refusal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Momo,
    Mpesa,
    Text,
}

/// The dialect of the request whose first bytes are `start`: by the path of its request
/// line (an absolute-form target's path included), as the router would place it.
pub(super) fn dialect(start: &[u8]) -> Dialect {
    let line = start.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut words = line.splitn(3, |b| *b == b' ');
    let method = words.next().unwrap_or_default();
    let Some(target) = words.next() else {
        return Dialect::Text;
    };
    if method.is_empty() || !method.iter().all(u8::is_ascii_uppercase) {
        return Dialect::Text;
    }
    let path = match target.iter().position(|b| *b == b'/') {
        Some(0) => target,
        // `http://host/path`: the path after the authority.
        Some(_) if target.starts_with(b"http://") || target.starts_with(b"https://") => {
            let after = &target[target.iter().position(|b| *b == b':').unwrap_or(0) + 3..];
            after
                .iter()
                .position(|b| *b == b'/')
                .map_or(&b""[..], |at| &after[at..])
        }
        _ => return Dialect::Text,
    };
    if path.windows(5).any(|w| w == b"/ipg/") {
        Dialect::Mpesa
    } else if path.starts_with(b"/portal")
        // A web page, as `metric_labels` counts it.
        || path.ends_with(b"/demo.html")
        || path.starts_with(b"/_mkoba")
        || path.starts_with(b"/metrics")
        || path.is_empty()
        || path == b"/"
    {
        Dialect::Text
    } else {
        Dialect::Momo
    }
}

/// The refusal with `status` in `dialect`, as the dialect's own code writes it: its
/// header fields (`content-type` and the rest; not `content-length`) and its body.
pub(super) fn answer(
    status: u16,
    dialect: Dialect,
    header_bytes: usize,
) -> Option<(http::HeaderMap, Vec<u8>)> {
    use axum::response::IntoResponse as _;
    let code = http::StatusCode::from_u16(status).ok()?;
    let message = match status {
        414 => "The request's target (its path and query) is too long.".to_owned(),
        431 => format!(
            "The request's header is too large: at most {} with its request line, in at most 100 fields.",
            size(header_bytes)
        ),
        _ => "The request could not be read: its request line or a header field is not valid HTTP/1.1.".to_owned(),
    };
    let response = match dialect {
        Dialect::Momo => mkoba_momo::error::json(
            code,
            &mkoba_api_types::momo::GatewayError {
                status_code: status,
                message,
            },
        ),
        Dialect::Mpesa => mkoba_mpesa::wire::gateway_error(code, &message),
        Dialect::Text => (
            code,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{message}\n"),
        )
            .into_response(),
    };
    let (mut parts, mut body) = response.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    // The body is in memory: every frame is ready at once.
    let mut bytes = Vec::new();
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        match axum::body::HttpBody::poll_frame(Pin::new(&mut body), &mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            Poll::Ready(None) => return Some((parts.headers, bytes)),
            Poll::Ready(Some(Err(_))) | Poll::Pending => return None,
        }
    }
}

/// `16 KiB` for 16,384 bytes; bytes as they are otherwise.
fn size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Unreadable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && (self.wrote || self.kept_len < KEPT)
        {
            let read = &buf.filled()[before..];
            self.keep(read);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> Unreadable<S> {
    /// Writes the replacement out; reports hyper's write whole once it all is.
    fn drive(&mut self, cx: &mut Context<'_>, asked: usize) -> Poll<io::Result<usize>> {
        loop {
            let Some((out, done, stands_for)) = &mut self.replacing else {
                return Poll::Ready(Ok(0));
            };
            if *done == out.len() {
                let n = (*stands_for).min(asked);
                self.replacing = None;
                self.wrote = true;
                return Poll::Ready(Ok(n));
            }
            match Pin::new(&mut self.io).poll_write(cx, &out[*done..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *done += n,
                other => return other,
            }
        }
    }

    /// Starts a replacement when `buf` is hyper's bodyless answer.
    fn replaces(&mut self, buf: &[u8]) -> bool {
        if self.replacing.is_none()
            && let Some(out) = self.replacement(buf)
        {
            self.replacing = Some((out, 0, buf.len()));
        }
        self.replacing.is_some()
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Unreadable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replaces(buf) {
            return self.drive(cx, buf.len());
        }
        self.wrote = true;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper writes its answer's head as the first slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && self.replaces(first)
        {
            return self.drive(cx, first.len());
        }
        self.wrote = true;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lines_path_names_its_dialect() {
        for (start, want) in [
            (
                &b"POST /openapi/ipg/v2/vodacomTZN/c2bPayment/singleStage/ HTTP/1.1\r\n"[..],
                Dialect::Mpesa,
            ),
            (
                b"GET /sandbox/ipg/v2/vodacomGHA/queryTransactionStatus/?in",
                Dialect::Mpesa,
            ),
            (b"POST /ipg/v1x/c2bPayment/singleStage/", Dialect::Mpesa),
            (
                b"POST /collection/v1_0/requesttopay HTTP/1.1\r\n",
                Dialect::Momo,
            ),
            (
                b"GET http://x:1/disbursement/v1_0/account/balance HTTP/1.1",
                Dialect::Momo,
            ),
            (b"GET http://x/openapi/ipg/v2/vodacomTZN/", Dialect::Mpesa),
            (b"GET /collection v1 HTTP/1.1\r\n", Dialect::Momo),
            (b"GET /portal/signin HTTP/1.1\r\n", Dialect::Text),
            (b"GET /_mkoba/health HTTP/1.1", Dialect::Text),
            (b"GET /v0.1.0/demo.html HTTP/1.1", Dialect::Text),
            (b"GET / HTTP/1.1", Dialect::Text),
            (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                Dialect::Text,
            ),
            (b"get /collection/ HTTP/1.1", Dialect::Text),
            (b"", Dialect::Text),
        ] {
            assert_eq!(dialect(start), want, "{}", String::from_utf8_lossy(start));
        }
    }

    #[test]
    fn only_hypers_bodyless_answers_are_replaced() {
        let mut conn = Unreadable::new(Vec::<u8>::new(), 16 * 1024);
        conn.keep(b"POST /openapi/ipg/v2/vodacomTZN/c2bPayment/singleStage/ HTTP/1.1\r\nX-");
        let hypers = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 12:04:26 GMT\r\n\r\n";
        let out = String::from_utf8(conn.replacement(hypers).unwrap()).unwrap();
        let body = r#"{"output_error":"The request's header is too large: at most 16 KiB with its request line, in at most 100 fields."}"#;
        assert_eq!(
            out,
            format!(
                "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-type: application/json\r\naccess-control-allow-origin: *\r\nx-content-type-options: nosniff\r\ncontent-length: {}\r\ndate: Mon, 07 Dec 2026 12:04:26 GMT\r\n\r\n{body}",
                body.len()
            )
        );
        for other in [
            &b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ncontent-type: text/plain\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 202 Accepted\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\nmore",
        ] {
            assert!(conn.replacement(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }
}
