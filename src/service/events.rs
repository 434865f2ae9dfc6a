//! Registry notifications into the register: one entry per push, pull, delete or mount, each event id
//! logged once however often the registry retries it.

use super::{Service, ServiceError};
use crate::register::event::{RECORDED_ACTIONS, RegistryEnvelope, registry_entry};

/// What a notification delivery changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordedEvents {
    pub recorded: usize,
    pub duplicates: usize,
    pub ignored: usize,
}

impl Service {
    pub async fn record_registry_events(&self, envelope: &RegistryEnvelope) -> Result<RecordedEvents, ServiceError> {
        let mut outcome = RecordedEvents::default();
        for event in &envelope.events {
            if !RECORDED_ACTIONS.contains(&event.action.as_str()) || event.id.is_empty() {
                outcome.ignored += 1;
                continue;
            }
            let key = format!("registry-event:{}", event.id);
            let (_, appended) = self.store.append_once(&key, &registry_entry(event)).await?;
            if appended {
                outcome.recorded += 1;
            } else {
                outcome.duplicates += 1;
            }
        }
        Ok(outcome)
    }
}
