//! Requests sent and read over a raw connection. A client library hides
//! whether the server closed a connection it had not announced closing;
//! reading the reply off the socket and sending the next request on the
//! same connection shows it.

use reqwest::header::{HeaderMap, HeaderValue};

use super::super::checks::Reply;

/// Reads one HTTP/1.1 response (framed by `Content-Length`, chunked, or
/// by the end of the connection).
async fn read_response(stream: &mut tokio::net::TcpStream) -> Result<Reply, String> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        if n == 0 {
            return Err("the connection was closed before a response".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("a malformed status line: {head:?}"))?;
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(name, value);
        }
    }
    let mut body = buffer[head_end..].to_vec();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < length {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading the body: {e}"))?;
            if n == 0 {
                return Err("the connection was closed mid-body".into());
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(length);
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut raw = body;
        let mut decoded = Vec::new();
        loop {
            if let Some(at) = raw.windows(2).position(|w| w == b"\r\n") {
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&raw[..at])
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim(),
                    16,
                )
                .map_err(|_| "a malformed chunk size".to_owned())?;
                if raw.len() >= at + 2 + size + 2 {
                    if size == 0 {
                        break;
                    }
                    decoded.extend_from_slice(&raw[at + 2..at + 2 + size]);
                    raw.drain(..at + 2 + size + 2);
                    continue;
                }
            }
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading a chunk: {e}"))?;
            if n == 0 {
                return Err("the connection was closed mid-body".into());
            }
            raw.extend_from_slice(&chunk[..n]);
        }
        body = decoded;
    } else if status != 204 && status != 304 {
        stream
            .read_to_end(&mut body)
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Sends `request` over a new connection, then `GET /healthz` on the same
/// connection: unless the reply said `Connection: close`, the connection
/// must still serve it. (A server that closes a connection it did not
/// announce closing makes the client's next request on it fail.)
pub(super) async fn raw_exchange(request: &reqwest::Request) -> Result<Reply, String> {
    use tokio::io::AsyncWriteExt;
    let url = request.url();
    let host = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port_or_known_default().unwrap_or(80)
    );
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let body = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .unwrap_or_default();
    let mut head =
        format!("{} {target} HTTP/1.1\r\nhost: {host}\r\n", request.method()).into_bytes();
    for (name, value) in request.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    stream
        .write_all(&head)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    // A server may answer (413) before it has read the body: that is allowed.
    let _ = stream.write_all(body).await;
    let reply = read_response(&mut stream).await?;
    let closing = reply.headers.get_all("connection").iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("close"))
    });
    if !closing {
        let next = async {
            stream
                .write_all(format!("GET /healthz HTTP/1.1\r\nhost: {host}\r\n\r\n").as_bytes())
                .await
                .map_err(|e| format!("sending: {e}"))?;
            read_response(&mut stream).await
        };
        match next.await {
            Ok(next) if next.status == 200 => {}
            Ok(next) => {
                return Err(format!(
                    "the next request on the connection got {}",
                    next.status
                ));
            }
            Err(e) => {
                return Err(format!(
                    "after answering {} without `Connection: close`, the server closed the \
                     keep-alive connection: the client's next request on it failed ({e})\n  reply: {reply:?}",
                    reply.status
                ));
            }
        }
    }
    Ok(reply)
}
