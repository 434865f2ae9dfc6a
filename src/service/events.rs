//! Registry notifications into the register: one entry per push, pull, delete or mount, each event id
//! logged once however often the registry retries it; a push a `[[sign_on_push]]` rule matches queues a sign
//! (`sign_on_push.rs`) before the delivery is answered.

use super::{LogPosition, Service, ServiceError, now_rfc3339};
use crate::register::event::{
    DeniedRequest, RECORDED_ACTIONS, RegistryEnvelope, denied_entry, registry_entry, token_entry,
};
use crate::store::{Append, Effect};

/// What a notification delivery changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RecordedEvents {
    pub recorded: usize,
    pub duplicates: usize,
    pub ignored: usize,
}

impl Service {
    /// Records a token made or revoked (`kind`: `token-created`, `token-revoked`) by `actor`.
    pub async fn record_token_change(
        &self,
        kind: &str,
        actor: &str,
        token: &serde_json::Value,
    ) -> Result<LogPosition, ServiceError> {
        let entry = token_entry(kind, &now_rfc3339(), actor, token);
        Ok(self.log.append(Append::plain(entry)).await?.into())
    }

    /// Records that a caller was refused a route, and why (one or several refusals, see `DeniedRequest`).
    pub async fn record_denial(&self, denied: &DeniedRequest<'_>) -> Result<LogPosition, ServiceError> {
        Ok(self.log.append(Append::plain(denied_entry(denied))).await?.into())
    }

    pub async fn record_registry_events(&self, envelope: &RegistryEnvelope) -> Result<RecordedEvents, ServiceError> {
        let (recorded, ignored): (Vec<_>, Vec<_>) = envelope
            .events
            .iter()
            .partition(|event| RECORDED_ACTIONS.contains(&event.action.as_str()) && !event.id.is_empty());
        // The jobs are durable before the entries, so a crash in between loses none: the registry retries the
        // delivery, the entries are logged then, and the jobs are already there.
        self.enqueue_pushes(&recorded).await?;
        let appends: Vec<Append> = recorded
            .into_iter()
            .map(|event| Append {
                entry: registry_entry(event),
                effect: Effect::Once { key: format!("registry-event:{}", event.id) },
            })
            .collect();
        let (placed, _) = self.log.append_all(&appends).await?;
        let fresh = placed.iter().filter(|p| p.new).count();
        Ok(RecordedEvents { recorded: fresh, duplicates: placed.len() - fresh, ignored: ignored.len() })
    }
}
