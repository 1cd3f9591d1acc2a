//! A minimal callback receiver: accepts PUT and POST on `/momo/{referenceId}`, parses the
//! body with [`parse_callback`], and prints what arrived. Plain tokio, no web framework.
//!
//! ```sh
//! cargo run -p mkoba-sdk --example callback_receiver -- 127.0.0.1:9000
//! # then send requests with X-Callback-Url: http://127.0.0.1:9000/momo/<referenceId>
//! # (the API user's providerCallbackHost must be 127.0.0.1)
//! ```
//!
//! A real app should confirm each callback with the status GET before acting on it: a
//! callback carries no signature, and may arrive twice.

use mkoba_sdk::momo::{parse_callback, reference_in_path};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{addr}/momo/{{referenceId}}");
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = handle(socket).await {
                eprintln!("connection: {e}");
            }
        });
    }
}

/// One HTTP/1.1 request per connection (enough for an example).
async fn handle(socket: tokio::net::TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(socket);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).await?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let status = if method == "PUT" || method == "POST" {
        match parse_callback(&body) {
            Ok(callback) => {
                println!(
                    "{method} {path}: reference {} status {} reason {} externalId {}",
                    reference_in_path(path)
                        .or(callback.reference_id())
                        .map_or("-".to_owned(), |r| r.to_string()),
                    callback.status(),
                    callback.reason().map_or("-".to_owned(), |r| r.to_string()),
                    callback.external_id().unwrap_or("-"),
                );
                "200 OK"
            }
            Err(e) => {
                eprintln!("{method} {path}: {e}");
                "400 Bad Request"
            }
        }
    } else {
        "405 Method Not Allowed"
    };
    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    reader.get_mut().write_all(answer.as_bytes()).await
}
