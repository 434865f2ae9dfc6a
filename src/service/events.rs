//! Registry notifications into the register: one entry per push, pull, delete or mount, each event id
//! logged once however often the registry retries it.

use super::{Service, ServiceError};
use crate::register::event::{RECORDED_ACTIONS, RegistryEnvelope, registry_entry};
use crate::store::{Append, Effect};

/// What a notification delivery changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RecordedEvents {
    pub recorded: usize,
    pub duplicates: usize,
    pub ignored: usize,
}

impl Service {
    pub async fn record_registry_events(&self, envelope: &RegistryEnvelope) -> Result<RecordedEvents, ServiceError> {
        let (recorded, ignored): (Vec<_>, Vec<_>) = envelope
            .events
            .iter()
            .partition(|event| RECORDED_ACTIONS.contains(&event.action.as_str()) && !event.id.is_empty());
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
