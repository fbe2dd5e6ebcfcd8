//! What happens now: every extension's BLF status, the tenant's events as
//! Server-Sent Events, calls in progress, and call records.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State as AxumState};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot, watch};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Presented, Scope, TenantParam};
use super::extensions::{Availability, lines_of, status, status_of};
use super::{Api, Problem, State};
use crate::events::{Event, Stamped};
use crate::sip::Control;
use edgepbx_engine::time::rfc3339;

/// One extension's BLF state.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Presence {
    /// Extension number.
    extension: String,
    /// `online`, `ringing`, `in_use`, `offline`, `dnd` or `away`.
    status: &'static str,
    /// Registered devices.
    devices: usize,
}

/// Every extension's presence now.
async fn snapshot(api: &Api, tenant: &str) -> Result<Vec<Presence>, Problem> {
    let extensions = api.admin.store.extensions().list(tenant).await?;
    let lines = lines_of(api, tenant);
    Ok(extensions
        .iter()
        .map(|e| {
            let line = lines.get(&e.number);
            Presence {
                extension: e.number.clone(),
                status: status(line, (&e.settings).into()),
                devices: line.map_or(0, |l| l.devices.len()),
            }
        })
        .collect())
}

/// The BLF state of every extension of the tenant.
#[utoipa::path(get, path = "/api/v1/presence", tag = "live", params(TenantParam),
    responses((status = 200, body = Vec<Presence>)))]
async fn presence(
    AxumState(api): AxumState<State>,
    scope: Scope,
) -> Result<Json<Vec<Presence>>, Problem> {
    Ok(Json(snapshot(&api, &scope.tenant).await?))
}

/// Open event streams per tenant.
#[derive(Default)]
pub struct Streams {
    open: std::sync::Mutex<HashMap<String, usize>>,
}

/// One counted stream; uncounted when dropped.
struct StreamSlot {
    api: State,
    tenant: String,
}

impl Streams {
    fn acquire(api: &State, tenant: &str) -> Result<StreamSlot, Problem> {
        let mut open = api.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(tenant.to_owned()).or_default();
        let max = api.config.max_event_streams;
        if *n >= max {
            return Err(Problem::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                format!("at most {max} event streams per tenant are open at once"),
            ));
        }
        *n += 1;
        Ok(StreamSlot {
            api: api.clone(),
            tenant: tenant.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .api
            .streams
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

/// How often a stream checks that its credential still holds.
const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// What one SSE connection keeps between events.
struct Feed {
    /// Counts the stream while it lives.
    _slot: StreamSlot,
    /// The credential it was opened with: a revoked key, a closed session
    /// or a removed user ends the stream (checked every minute and on every
    /// configuration change).
    credential: Presented,
    recheck: tokio::time::Interval,
    /// The server stopping ends the stream.
    stopping: watch::Receiver<bool>,
    api: State,
    tenant: String,
    events: broadcast::Receiver<Arc<Stamped>>,
    /// What this client last learnt of each extension.
    shown: HashMap<String, Presence>,
    /// Which extensions are in do-not-disturb or away (read again on
    /// every configuration change).
    availability: HashMap<String, Availability>,
    /// Events ready to send.
    queue: VecDeque<SseEvent>,
}

impl Feed {
    /// Queues a presence event for every extension whose state changed.
    async fn refresh(&mut self) {
        let Ok(extensions) = self.api.admin.store.extensions().list(&self.tenant).await else {
            return;
        };
        self.availability = extensions
            .iter()
            .map(|e| (e.number.clone(), (&e.settings).into()))
            .collect();
        let lines = lines_of(&self.api, &self.tenant);
        let gone: Vec<String> = self
            .shown
            .keys()
            .filter(|n| !self.availability.contains_key(*n))
            .cloned()
            .collect();
        for extension in gone {
            self.shown.remove(&extension);
            self.queue
                .push_back(sse("removed", &serde_json::json!({"extension": extension})));
        }
        let now = extensions.iter().map(|e| {
            let line = lines.get(&e.number);
            Presence {
                extension: e.number.clone(),
                status: status(line, (&e.settings).into()),
                devices: line.map_or(0, |l| l.devices.len()),
            }
        });
        for p in now {
            if self.shown.get(&p.extension) != Some(&p) {
                self.queue.push_back(sse("presence", &p));
                self.shown.insert(p.extension.clone(), p);
            }
        }
    }

    async fn next(mut self) -> Option<(SseEvent, Feed)> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some((event, self));
            }
            if *self.stopping.borrow() {
                return None;
            }
            let received = tokio::select! {
                received = self.events.recv() => received,
                _ = self.stopping.changed() => return None,
                _ = self.recheck.tick() => {
                    if !self.credential.still_valid(&self.api).await {
                        return None;
                    }
                    continue;
                }
            };
            match received {
                Ok(stamped) if stamped.event.tenant() == self.tenant => {
                    if matches!(stamped.event, Event::Configured { .. })
                        && !self.credential.still_valid(&self.api).await
                    {
                        return None;
                    }
                    self.translate(&stamped.event).await;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.queue
                        .push_back(SseEvent::default().event("resync").data("{}"));
                    self.refresh().await;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    async fn translate(&mut self, event: &Event) {
        match event {
            Event::Configured { .. } => self.refresh().await,
            Event::Line {
                extension,
                devices,
                ringing,
                talking,
                ..
            } => {
                let Some(set) = self.availability.get(extension) else {
                    return;
                };
                let p = Presence {
                    extension: extension.clone(),
                    status: status_of(*devices, *ringing, *talking, *set),
                    devices: *devices,
                };
                if self.shown.get(extension) != Some(&p) {
                    self.queue.push_back(sse("presence", &p));
                    self.shown.insert(extension.clone(), p);
                }
            }
            Event::Device {
                extension,
                contact,
                online,
                ..
            } => self.queue.push_back(sse(
                "device",
                &serde_json::json!({"extension": extension, "contact": contact, "online": online}),
            )),
            Event::Leg {
                call,
                role,
                extension,
                state,
                ..
            } => self.queue.push_back(sse(
                "call",
                &serde_json::json!({"call": call, "role": role, "extension": extension, "state": state}),
            )),
        }
    }
}

fn sse(name: &str, data: &impl Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_else(|_| "{}".into()))
}

/// The tenant's events as Server-Sent Events: `presence` (an extension's
/// BLF state changed; every extension's state comes first), `removed` (an
/// extension was deleted), `device`, `call`, and `resync` when events were
/// lost (fetch /presence again).
#[utoipa::path(get, path = "/api/v1/events", tag = "live", params(TenantParam),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 429, description = "Too many streams open for the tenant", body = Problem)))]
async fn events(
    AxumState(api): AxumState<State>,
    scope: Scope,
    axum::Extension(credential): axum::Extension<Presented>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.reset();
    let mut feed = Feed {
        _slot: Streams::acquire(&api, &scope.tenant)?,
        credential,
        recheck,
        stopping: api.stopping.clone(),
        events: api.admin.events.subscribe(Some(&scope.tenant)),
        api,
        tenant: scope.tenant,
        shown: HashMap::new(),
        availability: HashMap::new(),
        queue: VecDeque::new(),
    };
    feed.refresh().await;
    let stream = futures_util::stream::unfold(feed, Feed::next);
    let stream = futures_util::StreamExt::map(stream, Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A call in progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveCallView {
    /// Its id.
    id: String,
    /// The caller.
    caller: String,
    /// The number being routed.
    dialled: String,
    /// `ringing` or `answered`.
    state: &'static str,
    /// Who answered.
    answered_by: Option<String>,
    /// Seconds since it started.
    duration_secs: u64,
    /// Who decided its routing.
    policy: String,
}

/// The tenant's calls in progress.
#[utoipa::path(get, path = "/api/v1/calls", tag = "live", params(TenantParam),
    responses((status = 200, body = Vec<ActiveCallView>)))]
async fn calls(
    AxumState(api): AxumState<State>,
    scope: Scope,
) -> Result<Json<Vec<ActiveCallView>>, Problem> {
    let (reply, answer) = oneshot::channel();
    api.admin
        .core
        .send(Control::Calls {
            tenant: scope.tenant,
            reply,
        })
        .await
        .map_err(|e| Problem::internal(&e))?;
    let calls = answer.await.map_err(|e| Problem::internal(&e))?;
    Ok(Json(
        calls
            .into_iter()
            .map(|c| ActiveCallView {
                id: c.id,
                caller: c.caller,
                dialled: c.dialled,
                state: c.state,
                answered_by: c.answered_by,
                duration_secs: c.secs,
                policy: c.policy,
            })
            .collect(),
    ))
}

/// How many records.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// 1 to 1000 (default 50), newest first.
    limit: Option<u32>,
}

/// A finished call.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallRecordView {
    /// Its id.
    id: String,
    /// The caller.
    caller: String,
    /// The number dialled.
    dialled: String,
    /// Who answered.
    answered_by: Option<String>,
    /// When it started.
    started_at: String,
    /// When it was answered.
    answered_at: Option<String>,
    /// When it ended.
    ended_at: String,
    /// Seconds answered.
    duration_secs: u64,
    /// `answered`, `busy`, `no-answer`...
    outcome: String,
    /// Why it ended.
    cause: String,
    /// Who decided its routing.
    policy: String,
}

/// The tenant's latest call records, newest first.
#[utoipa::path(get, path = "/api/v1/call-records", tag = "live", params(RecordParams),
    responses((status = 200, body = Vec<CallRecordView>), (status = 422, body = Problem)))]
async fn records(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Query(p): Query<RecordParams>,
) -> Result<Json<Vec<CallRecordView>>, Problem> {
    let _ = p.tenant;
    let limit = p.limit.unwrap_or(50);
    if !(1..=edgepbx_store::MAX_LISTED_CALLS).contains(&limit) {
        return Err(Problem::field(
            "limit",
            format!("must be 1 to {}", edgepbx_store::MAX_LISTED_CALLS),
        ));
    }
    let records = api.admin.store.calls().recent(&scope.tenant, limit).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| CallRecordView {
                id: r.id,
                caller: r.caller,
                dialled: r.dialled,
                answered_by: r.answered_by,
                started_at: rfc3339(r.started_at),
                answered_at: r.answered_at.map(rfc3339),
                ended_at: rfc3339(r.ended_at),
                duration_secs: r.duration_secs,
                outcome: r.outcome,
                cause: r.cause,
                policy: r.policy,
            })
            .collect(),
    ))
}

/// Presence, events, calls and records.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(presence))
        .routes(routes!(events))
        .routes(routes!(calls))
        .routes(routes!(records))
}
