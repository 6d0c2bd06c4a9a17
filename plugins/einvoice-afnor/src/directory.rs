//! `directory.lookup` through the platform's Directory service, and the routing check that
//! runs before every submission.
//!
//! A SIREN or a SIRET is searched (`POST /v1/directory-line/search`, strict filter); any
//! other addressing identifier (`SIRET_ROUTINGCODE`…) is read directly
//! (`GET /v1/directory-line/code:{id}`). A line is usable when its status is `Enabled`; its
//! platform type says who receives: `WK` an approved platform, `DFH` the public portal
//! (Chorus Pro), which is how the ERP tells public customers from private ones.

use crate::client::{Client, Service, Target};
use crate::config::Config;
use crate::protocol::{self, DirectoryLine, DirectoryLines};
use crate::siren::{self, Identifier};
use passerelle_plugin_api::prelude::*;

/// `directory.lookup`.
pub fn lookup(
    query: &DirectoryQuery,
    config: &Config,
    host: &Host<'_>,
) -> Result<DirectoryAnswer, PluginError> {
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let id =
        siren::classify(&query.id).map_err(|e| PluginError::invalid_input(e).with_field("id"))?;
    find(&id, &Client::new(config, host))
}

/// Looks `id` up and says whether it can receive.
pub fn find(id: &Identifier, client: &Client<'_, '_>) -> Result<DirectoryAnswer, PluginError> {
    let (shown, lines) = match id {
        Identifier::Siren(s) | Identifier::Siret(s) => {
            let field = if matches!(id, Identifier::Siren(_)) {
                "siren"
            } else {
                "siret"
            };
            let body = serde_json::to_vec(&protocol::directory_search(field, s))
                .map_err(|e| PluginError::internal(format!("cannot encode the search: {e}")))?;
            let answer = client.call(
                Service::Directory,
                Method::Post,
                protocol::DIRECTORY_LINE_SEARCH,
                Some(("application/json", body)),
                Target::Directory { id: s },
                client.policy(),
                Idempotency::Idempotent,
            )?;
            let lines = if answer.status == 204 || answer.body.is_empty() {
                Vec::new()
            } else {
                answer
                    .json::<DirectoryLines>("the directory search")?
                    .results
            };
            (s.clone(), lines)
        }
        Identifier::Addressing(a) => {
            let found = client.call(
                Service::Directory,
                Method::Get,
                &protocol::directory_line_path(a),
                None,
                Target::Directory { id: a },
                client.policy(),
                Idempotency::Idempotent,
            );
            let lines = match found {
                Ok(answer) => vec![answer.json::<DirectoryLine>("the directory line")?],
                Err(e) if e.kind == ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            (a.clone(), lines)
        }
    };
    let mut entries: Vec<DirectoryEntry> = lines.into_iter().map(entry).collect();
    entries.sort_by_key(|e| !e.active);
    Ok(DirectoryAnswer {
        reachable: entries.iter().any(|e| e.active),
        id: shown,
        entries,
    })
}

fn entry(line: DirectoryLine) -> DirectoryEntry {
    let platform = match line.platform_type.as_deref() {
        Some("WK") => ReceivingPlatform::ApprovedPlatform,
        Some("DFH") => ReceivingPlatform::PublicPortal,
        _ => ReceivingPlatform::Unknown,
    };
    let status = line.directory_line_status.clone();
    let routing = line.routing_code.as_ref();
    let legal = line.legal_unit.as_ref();
    DirectoryEntry {
        addressing_identifier: line
            .addressing_identifier
            .clone()
            .or_else(|| line.siret.clone())
            .or_else(|| line.siren.clone())
            .unwrap_or_default(),
        siren: line.siren.clone().unwrap_or_default(),
        siret: line.siret.clone(),
        routing_code: routing.and_then(|r| r.routing_identifier.clone()),
        active: status.as_deref() == Some("Enabled") && platform != ReceivingPlatform::Unknown,
        provider_status: status,
        name: legal.and_then(|l| l.business_name.clone()),
        public_entity: platform == ReceivingPlatform::PublicPortal
            || legal.and_then(|l| l.entity_type.as_deref()) == Some("Public"),
        platform,
    }
}

/// The routing check before a submission: the recipient must have an enabled line with an
/// approved platform. A public entity is pointed to Chorus Pro.
pub fn check_route(
    recipient: &str,
    file_name: &str,
    client: &Client<'_, '_>,
) -> Result<DirectoryEntry, PluginError> {
    let id = siren::classify(recipient).map_err(|e| {
        PluginError::invalid_input(format!(
            "{file_name}: the buyer's identifier in the invoice is unusable ({e}); it was not \
             sent: write the buyer's SIREN, SIRET or electronic address (BT-49) in the invoice"
        ))
        .with_field("content_base64")
    })?;
    let answer = find(&id, client)?;
    if let Some(e) = answer
        .entries
        .iter()
        .find(|e| e.active && e.platform == ReceivingPlatform::ApprovedPlatform)
    {
        return Ok(e.clone());
    }
    let message = if answer.entries.iter().any(|e| e.active && e.public_entity) {
        format!(
            "{file_name} is addressed to {recipient}, a public entity that receives through the \
             public portal: it was not sent; submit it through the Chorus Pro instance"
        )
    } else if answer.entries.is_empty() {
        format!(
            "{file_name} is addressed to {recipient}, which the directory does not know: it was \
             not sent; check the buyer's identifier in the invoice (directory.lookup shows \
             what the directory holds)"
        )
    } else {
        let statuses: Vec<String> = answer
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e.addressing_identifier,
                    e.provider_status.as_deref().unwrap_or("without status")
                )
            })
            .collect();
        format!(
            "{file_name} is addressed to {recipient}, which cannot receive invoices now ({}): it \
             was not sent; try again once its directory entry is enabled",
            statuses.join(", ")
        )
    };
    Err(PluginError::invalid_input(message).with_field("content_base64"))
}
