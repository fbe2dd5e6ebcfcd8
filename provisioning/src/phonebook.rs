//! Remote phonebooks: the tenant's directory in each vendor's XML.
//!
//! - Yealink's remote phonebook: `YealinkIPPhoneDirectory` of
//!   `DirectoryEntry` elements, each a `Name` and one or more `Telephone`.
//! - Grandstream's downloadable phonebook (GXP16xx/17xx/21xx guide):
//!   `AddressBook` of `Contact` elements with `FirstName`, `LastName` and a
//!   `Phone` holding `phonenumber` and `accountindex`. The account index
//!   counts from 0 ("0 to 5 for account 1 to account 6"), so 0 dials from
//!   the phone's first account, the one edgepbx configures. The whole name
//!   goes in `FirstName`: names do not split reliably into first and last.
//!
//! Both are plain XML with every text escaped; entries are checked first
//! ([`DirectoryEntry::validate`]), so no text holds a control character.

use std::fmt::Write;

use crate::DirectoryEntry;
use crate::text::xml_escape;

/// Yealink's remote phonebook XML.
pub(crate) fn yealink(entries: &[DirectoryEntry]) -> String {
    let mut body =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<YealinkIPPhoneDirectory>\n");
    for entry in entries {
        // Writing to a String cannot fail.
        let _ = write!(
            body,
            "  <DirectoryEntry>\n    <Name>{}</Name>\n    <Telephone>{}</Telephone>\n  </DirectoryEntry>\n",
            xml_escape(&entry.name),
            xml_escape(&entry.number),
        );
    }
    body.push_str("</YealinkIPPhoneDirectory>\n");
    body
}

/// Grandstream's downloadable phonebook XML.
pub(crate) fn grandstream(entries: &[DirectoryEntry]) -> String {
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AddressBook>\n");
    for entry in entries {
        // Writing to a String cannot fail.
        let _ = write!(
            body,
            "  <Contact>\n    <FirstName>{}</FirstName>\n    <LastName/>\n    <Phone type=\"Work\">\n      <phonenumber>{}</phonenumber>\n      <accountindex>0</accountindex>\n    </Phone>\n  </Contact>\n",
            xml_escape(&entry.name),
            xml_escape(&entry.number),
        );
    }
    body.push_str("</AddressBook>\n");
    body
}
