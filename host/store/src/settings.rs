//! The stored form of an extension's call settings ([`CallSettings`],
//! defined with their checks in `edgepbx-model`).

use edgepbx_model::{
    AllowedDestinations, CallSettings, FollowMe, FollowMeDestination, ForwardTarget, InvalidField,
    RingMode,
};
use surrealdb::types::SurrealValue;

use crate::StoreError;

/// The stored form: every field optional, so rows written before a field
/// existed read as the default.
#[derive(SurrealValue, Default)]
pub(crate) struct SettingsRow {
    ring_timeout_secs: Option<u32>,
    dnd: Option<bool>,
    away: Option<bool>,
    forward_unconditional: Option<String>,
    forward_busy: Option<String>,
    forward_no_answer: Option<String>,
    forward_offline: Option<String>,
    follow_me_mode: Option<String>,
    follow_me: Option<Vec<FollowMeRow>>,
    voicemail: Option<bool>,
    outbound_caller_id: Option<String>,
    inbound_prefix: Option<String>,
    allowed_destinations: Option<String>,
}

#[derive(SurrealValue)]
pub(crate) struct FollowMeRow {
    number: String,
    timeout_secs: u32,
}

impl From<&CallSettings> for SettingsRow {
    fn from(s: &CallSettings) -> Self {
        let text = |t: &Option<ForwardTarget>| t.as_ref().map(ToString::to_string);
        SettingsRow {
            ring_timeout_secs: s.ring_timeout_secs,
            dnd: Some(s.dnd),
            away: Some(s.away),
            forward_unconditional: text(&s.forward_unconditional),
            forward_busy: text(&s.forward_busy),
            forward_no_answer: text(&s.forward_no_answer),
            forward_offline: text(&s.forward_offline),
            follow_me_mode: s.follow_me.as_ref().map(|f| f.mode.as_str().to_owned()),
            follow_me: s.follow_me.as_ref().map(|f| {
                f.destinations
                    .iter()
                    .map(|d| FollowMeRow {
                        number: d.number.clone(),
                        timeout_secs: d.timeout_secs,
                    })
                    .collect()
            }),
            voicemail: Some(s.voicemail),
            outbound_caller_id: s.outbound_caller_id.clone(),
            inbound_prefix: s.inbound_prefix.clone(),
            allowed_destinations: Some(s.allowed_destinations.to_string()),
        }
    }
}

impl SettingsRow {
    /// Reads a row back; a value that no longer parses is an invalid record.
    pub(crate) fn into_settings(self) -> Result<CallSettings, StoreError> {
        let bad = |e: InvalidField| StoreError::InvalidRecord {
            table: "extension",
            reason: e.to_string(),
        };
        let target = |field: &'static str, t: Option<String>| {
            t.map(|t| ForwardTarget::parse(field, &t)).transpose()
        };
        let follow_me = match (self.follow_me_mode, self.follow_me) {
            (Some(mode), Some(rows)) => Some(FollowMe {
                mode: RingMode::parse(&mode).map_err(bad)?,
                destinations: rows
                    .into_iter()
                    .map(|r| FollowMeDestination {
                        number: r.number,
                        timeout_secs: r.timeout_secs,
                    })
                    .collect(),
            }),
            _ => None,
        };
        Ok(CallSettings {
            ring_timeout_secs: self.ring_timeout_secs,
            dnd: self.dnd.unwrap_or(false),
            away: self.away.unwrap_or(false),
            forward_unconditional: target("forward_unconditional", self.forward_unconditional)
                .map_err(bad)?,
            forward_busy: target("forward_busy", self.forward_busy).map_err(bad)?,
            forward_no_answer: target("forward_no_answer", self.forward_no_answer).map_err(bad)?,
            forward_offline: target("forward_offline", self.forward_offline).map_err(bad)?,
            follow_me,
            voicemail: self.voicemail.unwrap_or(false),
            outbound_caller_id: self.outbound_caller_id,
            inbound_prefix: self.inbound_prefix,
            allowed_destinations: self
                .allowed_destinations
                .map(|a| AllowedDestinations::parse(&a))
                .transpose()
                .map_err(bad)?
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_row_form() {
        let s = CallSettings {
            ring_timeout_secs: Some(15),
            dnd: true,
            away: true,
            forward_busy: Some(ForwardTarget::Voicemail),
            forward_no_answer: Some(ForwardTarget::Number("102".into())),
            follow_me: Some(FollowMe {
                mode: RingMode::Sequential,
                destinations: vec![FollowMeDestination {
                    number: "+33612345678".into(),
                    timeout_secs: 20,
                }],
            }),
            allowed_destinations: AllowedDestinations::Patterns(vec!["0X.".into()]),
            ..CallSettings::default()
        };
        let back = SettingsRow::from(&s).into_settings().expect("reads back");
        assert_eq!(back, s);
        let empty = SettingsRow::default().into_settings().expect("defaults");
        assert_eq!(empty, CallSettings::default());
    }
}
