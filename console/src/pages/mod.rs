//! One module per page of the console.

pub mod api_keys;
pub mod contacts;
pub mod dashboard;
pub mod extension;
pub mod extensions;
pub mod groups;
pub mod import_export;
pub mod login;
pub mod phone;
pub mod phone_line;
pub mod phone_media;
pub mod phones;
pub mod phones_csv;
pub mod policies;
pub mod voicemail;
pub mod web_users;
