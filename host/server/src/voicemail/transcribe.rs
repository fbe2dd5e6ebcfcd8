//! Transcribing a message with a speech-to-text service that speaks the
//! OpenAI-compatible `POST /v1/audio/transcriptions` (whisper.cpp's
//! server, faster-whisper servers, LocalAI, hosted services): the WAV as
//! multipart/form-data, the text back as JSON.
//!
//! One request per connection over HTTP/1.1 (`Connection: close`), with
//! TLS for `https://` URLs (the system's trusted roots); the answer is
//! bounded in size and time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer read.
const MAX_ANSWER: usize = 1 << 20;

/// `[voicemail.transcription]`: where messages are transcribed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TranscriptionConfig {
    /// The service's base URL (`http://127.0.0.1:8080`); the request goes
    /// to `<url>/v1/audio/transcriptions`.
    pub url: String,
    /// The model to ask for (`whisper-1`).
    #[serde(default = "default_model")]
    pub model: String,
    /// A file holding the bearer key, when the service wants one.
    pub api_key_file: Option<PathBuf>,
    /// The language of the messages (ISO 639-1), when known.
    pub language: Option<String>,
    /// How long one transcription may take, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_model() -> String {
    "whisper-1".into()
}

fn default_timeout() -> u64 {
    120
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn target(url: &str) -> Result<Target, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("{url}: not an http:// or https:// URL"));
    };
    let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (
            host,
            port.parse()
                .map_err(|_| format!("{url}: the port is not a number"))?,
        ),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let base = base.trim_end_matches('/');
    let path = if base.is_empty() {
        "/v1/audio/transcriptions".to_owned()
    } else {
        format!("/{base}/v1/audio/transcriptions")
    };
    Ok(Target {
        tls,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        path,
    })
}

/// The multipart/form-data body of a request for `wav`.
fn form(boundary: &str, config: &TranscriptionConfig, wav: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(wav.len() + 512);
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field("model", &config.model);
    field("response_format", "json");
    if let Some(language) = &config.language {
        field("language", language);
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"message.wav\"\r\n\
             Content-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[derive(Deserialize)]
struct Answer {
    text: String,
}

/// The transcript of `wav`, or why there is none.
pub async fn transcribe(config: &TranscriptionConfig, wav: &[u8]) -> Result<String, String> {
    let target = target(&config.url)?;
    let key = match &config.api_key_file {
        Some(path) => Some(
            tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("the API key file {}: {e}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let boundary = format!("edgepbx-{:032x}", rand::random::<u128>());
    let body = form(&boundary, config, wav);
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n",
        target.path,
        target.host,
        body.len()
    );
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    head.push_str("\r\n");
    let exchange = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", target.host, target.port))?;
        if target.tls {
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| format!("{}: {e}", target.host))?;
            let stream = tls_connector()?
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {}: {e}", target.host))?;
            exchange(stream, head.as_bytes(), &body).await
        } else {
            exchange(tcp, head.as_bytes(), &body).await
        }
    };
    let (status, answer) = tokio::time::timeout(Duration::from_secs(config.timeout_secs), exchange)
        .await
        .map_err(|_| format!("no answer within {} s", config.timeout_secs))??;
    if status != 200 {
        let text = String::from_utf8_lossy(&answer);
        return Err(format!(
            "the service answered {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    serde_json::from_slice::<Answer>(&answer)
        .map(|a| a.text.trim().to_owned())
        .map_err(|e| format!("the service's answer is not a transcription: {e}"))
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Sends a request and reads the status and body of its answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &[u8],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let io = |e: std::io::Error| format!("talking to the service: {e}");
    stream.write_all(head).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER as u64 + 1)
        .read_to_end(&mut answer)
        .await
        .map_err(io)?;
    if answer.len() > MAX_ANSWER {
        return Err("the service's answer is too large".into());
    }
    parse_answer(&answer)
}

/// The status and body of an HTTP/1.1 answer read to its end
/// (Content-Length, chunked, or up to the close).
fn parse_answer(answer: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the service's answer has no header end")?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let rest = &answer[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the service's answer has no status")?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.trim().eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        rest.get(..length)
            .ok_or("the service's answer is shorter than it said")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "a chunk size that is not hexadecimal")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = data.get(..size).ok_or("a chunk cut short")?;
        body.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("a chunk cut short")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_endpoint() {
        assert_eq!(
            target("http://127.0.0.1:9000"),
            Ok(Target {
                tls: false,
                host: "127.0.0.1".into(),
                port: 9000,
                path: "/v1/audio/transcriptions".into()
            })
        );
        let t = target("https://stt.example/openai/").expect("valid");
        assert_eq!(
            (t.tls, t.port, t.path.as_str()),
            (true, 443, "/openai/v1/audio/transcriptions")
        );
        assert_eq!(
            target("http://[::1]:8080").map(|t| (t.host, t.port)),
            Ok(("::1".into(), 8080))
        );
        assert!(target("ftp://x").is_err());
        assert!(target("http://:80").is_err());
        assert!(target("http://host:port").is_err());
    }

    #[test]
    fn answers_of_every_framing() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"text\":\"hi\"}extra";
        assert_eq!(
            parse_answer(plain),
            Ok((200, b"{\"text\":\"hi\"}".to_vec()))
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2;x=y\r\nef\r\n0\r\n\r\n";
        assert_eq!(parse_answer(chunked), Ok((200, b"abcdef".to_vec())));
        let closed = b"HTTP/1.0 500 Oops\r\n\r\nbroken";
        assert_eq!(parse_answer(closed), Ok((500, b"broken".to_vec())));
        assert!(parse_answer(b"garbage").is_err());
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort").is_err());
        assert!(
            parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn the_form_carries_the_file_and_the_model() {
        let config = TranscriptionConfig {
            url: "http://x".into(),
            model: "whisper-1".into(),
            api_key_file: None,
            language: Some("en".into()),
            timeout_secs: 1,
        };
        let body = form("B", &config, b"RIFF");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"));
        assert!(text.contains("name=\"language\"\r\n\r\nen\r\n"));
        assert!(text.contains(
            "filename=\"message.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--B--\r\n"
        ));
    }
}
