//! An extension's voicemail: its messages (listed, played with range
//! requests, marked heard, deleted) and its greetings (uploaded as any
//! common WAV, converted to 8 kHz mono; played; removed). Every change
//! updates the phones' message lamps. And a tenant's own recordings of
//! the prompts voicemail speaks.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgepbx_engine::time::rfc3339;
use edgepbx_media::wav::read_wav;
use edgepbx_store::VoiceMessage;
use edgepbx_voicemail::Greeting;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Personal, Scope, TenantParam, WriteScope};
use super::problem::Body;
use super::{Problem, State};
use crate::voicemail::Voicemail;

/// Longest greeting or prompt upload accepted, seconds of audio.
const MAX_UPLOAD_SECS: u32 = 120;

/// A prompt of the set, and whether the tenant recorded its own.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptView {
    /// Its name (`leave-message`, `digit-5`).
    name: &'static str,
    /// The tenant replaced the built-in recording.
    own: bool,
}

/// A voice message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// Its id.
    id: String,
    /// The caller's number (`anonymous` when withheld).
    caller: String,
    /// The caller's name, when known.
    caller_name: Option<String>,
    /// When it was left (RFC 3339).
    received_at: String,
    /// Its length, milliseconds.
    duration_ms: u64,
    /// Heard or saved: no longer new.
    saved: bool,
    /// Its audio (`audio/wav`, range requests allowed).
    audio: String,
    /// Its transcript, once made.
    transcript: Option<String>,
    /// Its transcription: `off`, `pending`, `done` or `failed`.
    transcription: &'static str,
    /// Its e-mail: `off`, `pending`, `done` (sent) or `failed`.
    email: &'static str,
    /// E-mail attempts made.
    email_attempts: u32,
    /// Why the last e-mail attempt failed.
    email_error: Option<String>,
}

/// A mailbox's messages and counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxView {
    /// Messages not yet heard.
    new: usize,
    /// Messages heard and kept.
    saved: usize,
    /// Greetings recorded: `unavailable`, `busy`, `name`.
    greetings: Vec<&'static str>,
    /// Oldest first.
    messages: Vec<MessageView>,
}

/// A change to a message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagePatch {
    /// Heard (true) or new again (false).
    saved: bool,
}

fn view(number: &str, m: VoiceMessage) -> MessageView {
    MessageView {
        audio: format!(
            "/api/v1/extensions/{number}/voicemail/messages/{}/audio",
            m.id
        ),
        id: m.id,
        caller: m.caller,
        caller_name: m.caller_name,
        received_at: rfc3339(m.received_at),
        duration_ms: m.duration_ms,
        saved: m.saved,
        transcript: m.transcript,
        transcription: m.transcription.as_str(),
        email: m.email.state.as_str(),
        email_attempts: m.email.attempts,
        email_error: m.email.error,
    }
}

/// The extension `number` of the tenant, or 404.
async fn mailbox(api: &State, tenant: &str, number: &str) -> Result<String, Problem> {
    api.admin
        .store
        .extensions()
        .get(tenant, number)
        .await?
        .map(|e| e.number)
        .ok_or_else(|| Problem::not_found(format!("extension {number}")))
}

fn voicemail(api: &State) -> &Arc<Voicemail> {
    &api.voicemail
}

/// An extension's messages.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/voicemail", tag = "voicemail",
    params(TenantParam, ("number" = String, Path)),
    responses((status = 200, body = MailboxView), (status = 404, body = Problem)))]
async fn read_mailbox(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path(number): Path<String>,
) -> Result<Json<MailboxView>, Problem> {
    who.reach(&number)?;
    let scope = who.0;
    let number = mailbox(&api, &scope.tenant, &number).await?;
    let vm = voicemail(&api);
    let messages = vm.store().list(&scope.tenant, &number).await?;
    let new = messages.iter().filter(|m| !m.saved).count();
    let mut greetings = Vec::new();
    for greeting in Greeting::ALL {
        let path = vm.greeting_path(&scope.tenant, &number, greeting);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            greetings.push(greeting.as_str());
        }
    }
    Ok(Json(MailboxView {
        new,
        saved: messages.len() - new,
        greetings,
        messages: messages.into_iter().map(|m| view(&number, m)).collect(),
    }))
}

async fn find_message(
    api: &State,
    tenant: &str,
    number: &str,
    id: &str,
) -> Result<(String, VoiceMessage), Problem> {
    let number = mailbox(api, tenant, number).await?;
    let message = voicemail(api)
        .store()
        .get(tenant, &number, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("message {id}")))?;
    Ok((number, message))
}

/// One message.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/voicemail/messages/{id}", tag = "voicemail",
    params(TenantParam, ("number" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = MessageView), (status = 404, body = Problem)))]
async fn read_message(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path((number, id)): Path<(String, String)>,
) -> Result<Json<MessageView>, Problem> {
    who.reach(&number)?;
    let scope = who.0;
    let (number, message) = find_message(&api, &scope.tenant, &number, &id).await?;
    Ok(Json(view(&number, message)))
}

/// Marks a message heard, or new again.
#[utoipa::path(patch, path = "/api/v1/extensions/{number}/voicemail/messages/{id}", tag = "voicemail",
    params(TenantParam, ("number" = String, Path), ("id" = String, Path)),
    request_body = MessagePatch,
    responses((status = 200, body = MessageView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_message(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path((number, id)): Path<(String, String)>,
    Body(patch): Body<MessagePatch>,
) -> Result<Json<MessageView>, Problem> {
    who.change(&number)?;
    let scope = who.0;
    let (number, _) = find_message(&api, &scope.tenant, &number, &id).await?;
    let vm = voicemail(&api);
    vm.store()
        .set_saved(&scope.tenant, &number, &id, patch.saved)
        .await?;
    vm.changed(&scope.tenant, &number).await;
    let (number, message) = find_message(&api, &scope.tenant, &number, &id).await?;
    Ok(Json(view(&number, message)))
}

/// Deletes a message and its audio.
#[utoipa::path(delete, path = "/api/v1/extensions/{number}/voicemail/messages/{id}", tag = "voicemail",
    params(TenantParam, ("number" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn remove_message(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path((number, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    who.change(&number)?;
    let scope = who.0;
    let (number, message) = find_message(&api, &scope.tenant, &number, &id).await?;
    voicemail(&api)
        .delete(&scope.tenant, &number, &message.id)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A message's audio (`audio/wav`; `Range: bytes=...` answered 206).
#[utoipa::path(get, path = "/api/v1/extensions/{number}/voicemail/messages/{id}/audio", tag = "voicemail",
    params(TenantParam, ("number" = String, Path), ("id" = String, Path),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`")),
    responses((status = 200, content_type = "audio/wav"), (status = 206, content_type = "audio/wav"),
        (status = 404, body = Problem), (status = 416, body = Problem)))]
async fn message_audio(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path((number, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    who.reach(&number)?;
    let scope = who.0;
    let (number, message) = find_message(&api, &scope.tenant, &number, &id).await?;
    let path = voicemail(&api).message_path(&scope.tenant, &number, &message.id);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| Problem::not_found(format!("the audio of message {id}")))?;
    audio(bytes, &headers)
}

/// A greeting's name from the path, or 404.
fn greeting_of(kind: &str) -> Result<Greeting, Problem> {
    Greeting::parse(kind).ok_or_else(|| Problem::not_found(format!("greeting {kind}")))
}

/// A greeting's audio (`audio/wav`).
#[utoipa::path(get, path = "/api/v1/extensions/{number}/voicemail/greetings/{kind}", tag = "voicemail",
    params(TenantParam, ("number" = String, Path), ("kind" = String, Path, description = "`unavailable`, `busy` or `name`")),
    responses((status = 200, content_type = "audio/wav"), (status = 404, body = Problem)))]
async fn read_greeting(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path((number, kind)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    who.reach(&number)?;
    let scope = who.0;
    let greeting = greeting_of(&kind)?;
    let number = mailbox(&api, &scope.tenant, &number).await?;
    let path = voicemail(&api).greeting_path(&scope.tenant, &number, greeting);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| Problem::not_found(format!("greeting {kind}")))?;
    audio(bytes, &headers)
}

/// Replaces a greeting with an uploaded WAV file (PCM, μ-law, A-law or
/// float, any rate and channels; at most two minutes), converted to 8 kHz
/// mono. The body is the file, as `audio/wav` or
/// `application/octet-stream`.
#[utoipa::path(put, path = "/api/v1/extensions/{number}/voicemail/greetings/{kind}", tag = "voicemail",
    params(TenantParam, ("number" = String, Path), ("kind" = String, Path, description = "`unavailable`, `busy` or `name`")),
    request_body(content((Vec<u8> = "audio/wav"), (Vec<u8> = "application/octet-stream")),
        description = "The WAV file"),
    responses((status = 204), (status = 404, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn replace_greeting(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path((number, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    who.change(&number)?;
    let scope = who.0;
    let greeting = greeting_of(&kind)?;
    let number = mailbox(&api, &scope.tenant, &number).await?;
    let pcm = wav_upload(&headers, body).await?;
    store_wav(
        &voicemail(&api).greeting_path(&scope.tenant, &number, greeting),
        &pcm,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audio of an uploaded WAV file, converted to 8 kHz mono; a
/// silent one is refused.
async fn wav_upload(headers: &HeaderMap, body: Bytes) -> Result<edgepbx_media::wav::Pcm, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if ![
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/vnd.wave",
        "application/octet-stream",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t))
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "audio is uploaded as audio/wav (or application/octet-stream)",
        ));
    }
    let pcm = tokio::task::spawn_blocking(move || read_wav(&body, MAX_UPLOAD_SECS))
        .await
        .map_err(|_| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "conversion failed"))?
        .map_err(|e| Problem::field("body", e.to_string()))?;
    if !pcm.has_sound(300, 300) {
        return Err(Problem::field("body", "the recording is silent"));
    }
    Ok(pcm)
}

/// Removes a greeting (callers hear the default one again).
#[utoipa::path(delete, path = "/api/v1/extensions/{number}/voicemail/greetings/{kind}", tag = "voicemail",
    params(TenantParam, ("number" = String, Path), ("kind" = String, Path, description = "`unavailable`, `busy` or `name`")),
    responses((status = 204), (status = 404, body = Problem)))]
async fn remove_greeting(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path((number, kind)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    who.change(&number)?;
    let scope = who.0;
    let greeting = greeting_of(&kind)?;
    let number = mailbox(&api, &scope.tenant, &number).await?;
    let path = voicemail(&api).greeting_path(&scope.tenant, &number, greeting);
    tokio::fs::remove_file(&path)
        .await
        .map_err(|_| Problem::not_found(format!("greeting {kind}")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A prompt's name from the path, or 404.
fn prompt_of(name: &str) -> Result<&'static str, Problem> {
    edgepbx_voicemail::PROMPTS
        .iter()
        .find(|p| **p == name)
        .copied()
        .ok_or_else(|| Problem::not_found(format!("prompt {name}")))
}

/// The prompts voicemail speaks, and which the tenant replaced.
#[utoipa::path(get, path = "/api/v1/voicemail/prompts", tag = "voicemail", params(TenantParam),
    responses((status = 200, body = Vec<PromptView>)))]
async fn list_prompts(
    AxumState(api): AxumState<State>,
    scope: Scope,
) -> Result<Json<Vec<PromptView>>, Problem> {
    let vm = voicemail(&api);
    let mut prompts = Vec::with_capacity(edgepbx_voicemail::PROMPTS.len());
    for name in edgepbx_voicemail::PROMPTS {
        let own = tokio::fs::try_exists(vm.prompt_path(&scope.tenant, name))
            .await
            .unwrap_or(false);
        prompts.push(PromptView { name, own });
    }
    Ok(Json(prompts))
}

/// A prompt as the tenant's callers hear it (`audio/wav`): its own
/// recording, else the built-in one.
#[utoipa::path(get, path = "/api/v1/voicemail/prompts/{name}", tag = "voicemail",
    params(TenantParam, ("name" = String, Path)),
    responses((status = 200, content_type = "audio/wav"), (status = 404, body = Problem)))]
async fn read_prompt(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let name = prompt_of(&name)?;
    let own = tokio::fs::read(voicemail(&api).prompt_path(&scope.tenant, name)).await;
    let bytes = match own {
        Ok(bytes) => bytes,
        Err(_) => crate::voicemail::prompts::built_in_file(name)
            .ok_or_else(|| Problem::not_found(format!("prompt {name}")))?
            .to_vec(),
    };
    audio(bytes, &headers)
}

/// Replaces a prompt for the tenant's callers with an uploaded WAV file
/// (as greetings are uploaded).
#[utoipa::path(put, path = "/api/v1/voicemail/prompts/{name}", tag = "voicemail",
    params(TenantParam, ("name" = String, Path)),
    request_body(content((Vec<u8> = "audio/wav"), (Vec<u8> = "application/octet-stream")),
        description = "The WAV file"),
    responses((status = 204), (status = 404, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn replace_prompt(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    let name = prompt_of(&name)?;
    let pcm = wav_upload(&headers, body).await?;
    store_wav(&voicemail(&api).prompt_path(&scope.tenant, name), &pcm).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Goes back to the built-in recording of a prompt.
#[utoipa::path(delete, path = "/api/v1/voicemail/prompts/{name}", tag = "voicemail",
    params(TenantParam, ("name" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn remove_prompt(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    let name = prompt_of(&name)?;
    tokio::fs::remove_file(voicemail(&api).prompt_path(&scope.tenant, name))
        .await
        .map_err(|_| Problem::not_found(format!("the tenant's own prompt {name}")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Writes audio as a WAV file; a full or failing disk is a 503.
async fn store_wav(path: &std::path::Path, pcm: &edgepbx_media::wav::Pcm) -> Result<(), Problem> {
    crate::voicemail::write_file(path, &pcm.to_wav())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, path = %path.display(), "cannot write audio");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the audio could not be stored",
            )
        })
}

/// `bytes` as `audio/wav`, the whole or the one range asked.
fn audio(bytes: Vec<u8>, headers: &HeaderMap) -> Result<Response, Problem> {
    let len = bytes.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, body, content_range) = match range.map(|r| byte_range(r, len)) {
        None => (StatusCode::OK, bytes, None),
        Some(Some((start, end))) => (
            StatusCode::PARTIAL_CONTENT,
            bytes[start..=end].to_vec(),
            Some(format!("bytes {start}-{end}/{len}")),
        ),
        Some(None) => {
            let mut response = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the audio has {len} bytes; ask one range within them"),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

/// The one byte range of a `Range` header within `len` bytes, as first
/// and last index; `None` when it is malformed, several or unsatisfiable
/// (RFC 9110 §14.1.2).
fn byte_range(header: &str, len: usize) -> Option<(usize, usize)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix: usize = last.parse().ok()?;
        if suffix == 0 {
            return None;
        }
        return Some((len.saturating_sub(suffix), len - 1));
    }
    let start: usize = first.parse().ok()?;
    let end = if last.is_empty() {
        len - 1
    } else {
        last.parse::<usize>().ok()?.min(len - 1)
    };
    (start <= end && start < len).then_some((start, end))
}

/// The voicemail routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(read_mailbox))
        .routes(routes!(read_message, update_message, remove_message))
        .routes(routes!(message_audio))
        .routes(routes!(read_greeting, replace_greeting, remove_greeting))
        .routes(routes!(list_prompts))
        .routes(routes!(read_prompt, replace_prompt, remove_prompt))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn byte_ranges_as_rfc_9110_reads_them() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=-5000", 1000), Some((0, 999)));
        assert_eq!(byte_range("bytes=990-5000", 1000), Some((990, 999)));
        for bad in [
            "bytes=1000-",
            "bytes=5-1",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=-0",
            "bytes=a-b",
            "bytes=",
        ] {
            assert_eq!(byte_range(bad, 1000), None, "{bad}");
        }
        assert_eq!(byte_range("bytes=0-0", 0), None);
    }
}
