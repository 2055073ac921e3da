//! Tessera's built-in applications: the command line's client, which every tenant
//! has without a directory record.

use tessera_core::AppId;
use uuid::Uuid;

/// The client id of Tessera's own command-line client: a built-in public client
/// that signs in with the device flow (no directory record; every tenant has it).
pub const CLI_CLIENT_ID: &str = "7e55a1c1-0b6f-4c1e-9a4d-3f2b8c6d5e01";

/// The command line's client id as a UUID.
pub(crate) fn cli_client_id() -> AppId {
    AppId::from_uuid(Uuid::from_u128(0x7e55a1c1_0b6f_4c1e_9a4d_3f2b8c6d5e01))
}

/// Whether an application is Tessera's own management surface (Conditional
/// Access's `MicrosoftAdminPortals`): the command line.
pub(crate) fn is_management_client(app_id: AppId) -> bool {
    app_id == cli_client_id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_client_id_is_the_constant() {
        assert_eq!(cli_client_id().to_string(), CLI_CLIENT_ID);
    }
}
