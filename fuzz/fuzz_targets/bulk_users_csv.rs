//! Bulk-create files are uploaded by administrators: any bytes must give users or
//! problems with their lines, never a panic; every user given names a principal
//! name and a display name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_directory::bulk;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(file) = bulk::users(text) {
        for user in &file.users {
            assert!(user.user["userPrincipalName"].is_string());
            assert!(user.user["displayName"].is_string());
            assert!(user.line >= 1);
        }
    }
});
