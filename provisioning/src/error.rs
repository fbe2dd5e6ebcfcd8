//! Why a profile or a directory cannot be rendered.

/// A value that would make a file the phone misreads, or one a phone
/// cannot take. Rendering checks every value before it writes a byte, so
/// an error means no file at all, never half of one.
///
/// The variants carry the field's name (as [`PhoneProfile`]'s fields are
/// named, `account.password`), never a secret value.
///
/// [`PhoneProfile`]: crate::PhoneProfile
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A control character: a line break would start a new setting in a
    /// Yealink file, and XML 1.0 cannot carry most of them at all.
    #[error("{field} contains a control character (line break, tab...)")]
    ControlCharacter {
        /// The field.
        field: &'static str,
    },
    /// Longer than the phones take.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its most characters.
        max: usize,
    },
    /// Empty where a value is needed.
    #[error("{field} is empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// Begins or ends with a space, which the phones' parsers drop.
    #[error("{field} begins or ends with a space")]
    SurroundingSpace {
        /// The field.
        field: &'static str,
    },
    /// Not a model name: 1 to 32 of letters, digits, spaces and `-_()`.
    #[error("model {value:?} is not 1 to 32 of letters, digits, spaces and -_()")]
    InvalidModel {
        /// The value given.
        value: String,
    },
    /// Not a host name, IPv4 address or bracketed IPv6 address.
    #[error("{field} {value:?} is not a host name or IP address")]
    InvalidHost {
        /// The field.
        field: &'static str,
        /// The value (host names are not secret).
        value: String,
    },
    /// Not an `http://` or `https://` URL of visible ASCII characters.
    #[error("{field} is not an http:// or https:// URL without spaces")]
    InvalidUrl {
        /// The field.
        field: &'static str,
    },
    /// A number outside what the phones accept.
    #[error("{field} must be from {min} to {max}, not {value}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u32,
        /// The least allowed.
        min: u32,
        /// The most allowed.
        max: u32,
    },
    /// Not a number a phone can dial.
    #[error("{field} {value:?} is not 1 to 32 of digits, '+', '*', '#'")]
    NotDialable {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// More directory entries than a phone loads.
    #[error("{count} directory entries, more than the {max} a phonebook holds")]
    TooManyEntries {
        /// How many were given.
        count: usize,
        /// The most a phonebook holds.
        max: usize,
    },
    /// One directory entry is wrong.
    #[error("directory entry {index}: {problem}")]
    DirectoryEntry {
        /// Its position in the list, from 0.
        index: usize,
        /// What is wrong with it.
        problem: Box<RenderError>,
    },
}
