//! Command-line front ends of the capabilities: `ocr`, `sign`, `invoice`, `calendar`. Each turns files
//! and flags into the capability's input, calls it exactly as the ERP would (through
//! [`Engine::invoke`], on the one enabled provider or `--instance`), and prints a summary —
//! or the raw output with `--json`. None of them knows which provider answers.
// Doc comments here are `--help` texts, shown as typed: `<email>` is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use super::print_json;
use crate::engine::Engine;
use crate::ids::InstanceId;
use crate::instances::ConfigError;
use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Subcommand};
use passerelle_plugin_api::capabilities::{
    CalendarSync, CalendarSyncOutput, Deposit, DepositFilter, DepositList, DepositRef,
    DocumentToSign, EinvoiceList, EinvoiceStatus, EinvoiceSubmit, EsignDocuments, EsignRequest,
    EsignStatus, ExpenseReceipt, ExpenseReceiptOcr, InvoiceSubmission, SignatureRef,
    SignatureRequest, SignatureTransaction, SignedDocuments, SignerRequest,
};
use passerelle_plugin_api::capabilities::{Company, CompanyLookup, CompanyQuery};
use passerelle_plugin_api::Operation;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Instance selection and output format, shared by the capability commands.
#[derive(Debug, Args)]
pub struct Target {
    /// Instance to use; by default the one enabled instance serving the operation.
    #[arg(long, global = true)]
    pub instance: Option<String>,
    /// Print the capability's output as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `passerelle ocr <file>`.
#[derive(Debug, Args)]
pub struct OcrArgs {
    /// Photo or scan of a receipt (JPEG, PNG, WebP, HEIC or PDF; checked by content).
    pub file: PathBuf,
    #[command(flatten)]
    pub target: Target,
}

/// `passerelle sign …`.
#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// Send documents for signature; prints the transaction id and the signing URL.
    Request {
        /// A PDF to sign (repeatable).
        #[arg(long = "doc", required = true)]
        docs: Vec<PathBuf>,
        /// A signer, as "First Last <email>" (repeatable, in signing order).
        #[arg(long = "signer", required = true)]
        signers: Vec<String>,
        /// The ERP's reference for this transaction (a retry with the same id is not sent twice).
        #[arg(long)]
        custom_id: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Language of the signing pages, e.g. fr or en.
        #[arg(long)]
        language: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Show a transaction's status and its signers'.
    Status {
        id: String,
        /// Ask the provider instead of answering from the last known state.
        #[arg(long)]
        refresh: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Write a completed transaction's signed documents into a folder.
    Fetch {
        id: String,
        #[arg(long)]
        out: PathBuf,
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: Target,
    },
}

/// `passerelle invoice …`.
#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// Submit invoice files (Factur-X PDF, UBL or CII; detected from the content), one after
    /// the other within the provider's quota, with progress.
    Submit {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Dematerialisation code of the invoices.
        #[arg(long, default_value = "CHORUS_DEMATERIALIZED")]
        code: String,
        #[command(flatten)]
        target: Target,
    },
    /// Follow one deposit: state and errors, as the provider reports them now.
    Status {
        deposit: String,
        #[command(flatten)]
        target: Target,
    },
    /// Deposits recorded by the instance, newest first.
    List {
        /// Only deposits in this state: pending, integrated, partially_integrated, rejected.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        target: Target,
    },
}

/// `passerelle calendar …`.
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Synchronise ERP appointments with calendars; the input is the JSON of calendar.sync
    /// (`{"mailboxes": [...], "window": {...}, "appointments": [...]}`) or `@file.json`.
    Sync {
        #[arg(long)]
        input: String,
        #[command(flatten)]
        target: Target,
    },
}

fn instance(target: &Target) -> anyhow::Result<Option<InstanceId>> {
    Ok(target
        .instance
        .as_deref()
        .map(InstanceId::new)
        .transpose()?)
}

async fn call<O: Operation>(
    engine: &Engine,
    target: &Target,
    input: &O::Input,
) -> anyhow::Result<O::Output>
where
    O::Output: DeserializeOwned,
{
    let input = serde_json::to_value(input)?;
    let out = engine
        .invoke(
            O::NAME,
            input,
            instance(target)?.as_ref(),
            &crate::actor::cli_actor(),
        )
        .await?;
    serde_json::from_value(out)
        .with_context(|| format!("the answer of {} is not in the expected shape", O::NAME))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| crate::cli::refused(format!("cannot read {}: {e}", path.display())))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".to_owned())
}

pub async fn ocr(engine: &Engine, args: OcrArgs) -> anyhow::Result<()> {
    let bytes = read(&args.file)?;
    let input = passerelle_plugin_api::capabilities::ReceiptDocument {
        file_name: Some(file_name(&args.file)),
        content_base64: b64().encode(bytes),
    };
    let receipt: ExpenseReceipt = call::<ExpenseReceiptOcr>(engine, &args.target, &input).await?;
    if args.target.json {
        return print_json(&receipt);
    }
    print_receipt(&receipt);
    Ok(())
}

fn money(v: Option<f64>, currency: &str) -> String {
    v.map(|v| format!("{v:.2} {currency}"))
        .unwrap_or_else(|| "—".to_owned())
}

fn print_receipt(r: &ExpenseReceipt) {
    let cur = r.currency.as_deref().unwrap_or("");
    let low = |field: &str| {
        r.confidence
            .get(field)
            .filter(|c| **c < 0.5)
            .map(|c| format!("  (low confidence {c:.2})"))
            .unwrap_or_default()
    };
    println!(
        "{}{}",
        r.supplier.name.as_deref().unwrap_or("(supplier not read)"),
        low("supplier.name")
    );
    println!(
        "  date:          {} {}{}",
        r.date.as_deref().unwrap_or("—"),
        r.time.as_deref().unwrap_or(""),
        low("date")
    );
    println!(
        "  total incl.:   {}{}",
        money(r.total_incl_tax, cur),
        low("total_incl_tax")
    );
    println!("  total excl.:   {}", money(r.total_excl_tax, cur));
    println!("  tax:           {}", money(r.total_tax, cur));
    if r.tip.is_some() {
        println!("  tip:           {}", money(r.tip, cur));
    }
    for t in &r.taxes {
        println!(
            "  tax line:      {}% on {} = {} {}",
            t.rate_percent
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into()),
            money(t.base, cur),
            money(t.amount, cur),
            t.code.as_deref().unwrap_or("")
        );
    }
    if let Some(c) = &r.category {
        println!(
            "  category:      {c}{}",
            r.subcategory
                .as_deref()
                .map(|s| format!(" / {s}"))
                .unwrap_or_default()
        );
    }
    if let Some(n) = &r.receipt_number {
        println!("  receipt no.:   {n}");
    }
    for item in &r.line_items {
        println!(
            "  item:          {} x{} = {}",
            item.description.as_deref().unwrap_or("?"),
            item.quantity
                .map(|q| q.to_string())
                .unwrap_or_else(|| "1".into()),
            money(item.total_amount, cur)
        );
    }
    println!("  read by:       {} ({})", r.provider, r.model);
    println!("  recorded by:   {}", r.recorded_by);
}

/// "Jeanne Martin <jeanne@example.com>" → first name, last name, email.
fn parse_signer(text: &str) -> anyhow::Result<SignerRequest> {
    let bad = || {
        crate::cli::refused(format!("--signer {text:?}: expected \"First Last <email>\", e.g. \"Jeanne Martin <jeanne@example.com>\""))
    };
    let (name, rest) = text.split_once('<').ok_or_else(bad)?;
    let email = rest.strip_suffix('>').ok_or_else(bad)?.trim().to_owned();
    if !email.contains('@') {
        return Err(bad());
    }
    let name = name.trim();
    let (first, last) = name.split_once(' ').ok_or_else(bad)?;
    Ok(SignerRequest {
        first_name: first.trim().to_owned(),
        last_name: last.trim().to_owned(),
        email,
        phone: None,
    })
}

fn print_transaction(t: &SignatureTransaction) {
    println!("transaction {}: {}", t.id, t.status);
    if let Some(url) = &t.signing_url {
        println!("signing URL: {url}");
    }
    for s in &t.signers {
        println!(
            "  {} {} <{}>: {}{}",
            s.first_name,
            s.last_name,
            s.email,
            s.status,
            s.action_date
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    if let Some(e) = &t.last_error {
        println!("  last error: {e}");
    }
}

pub async fn sign(engine: &Engine, cmd: SignCommand) -> anyhow::Result<()> {
    match cmd {
        SignCommand::Request {
            docs,
            signers,
            custom_id,
            description,
            language,
            target,
        } => {
            let mut documents = Vec::new();
            for doc in &docs {
                documents.push(DocumentToSign {
                    name: file_name(doc),
                    content_base64: b64().encode(read(doc)?),
                    ..DocumentToSign::default()
                });
            }
            let signers = signers
                .iter()
                .map(|s| parse_signer(s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let request = SignatureRequest {
                documents,
                signers,
                language,
                custom_id,
                description,
                ..SignatureRequest::default()
            };
            let t: SignatureTransaction = call::<EsignRequest>(engine, &target, &request).await?;
            if target.json {
                return print_json(&t);
            }
            print_transaction(&t);
        }
        SignCommand::Status {
            id,
            refresh,
            target,
        } => {
            let t: SignatureTransaction =
                call::<EsignStatus>(engine, &target, &SignatureRef { id, refresh }).await?;
            if target.json {
                return print_json(&t);
            }
            print_transaction(&t);
        }
        SignCommand::Fetch {
            id,
            out,
            force,
            target,
        } => {
            let docs: SignedDocuments =
                call::<EsignDocuments>(engine, &target, &SignatureRef { id, refresh: false })
                    .await?;
            let written = write_documents(&docs, &out, force)?;
            if target.json {
                return print_json(&written);
            }
            for w in written {
                println!(
                    "{}  {} bytes  sha256 {}",
                    w.path.display(),
                    w.size,
                    w.sha256
                );
            }
        }
    }
    Ok(())
}

/// Longest file name written, in bytes: file systems take 255, and the atomic write's
/// temporary name adds a prefix and a suffix.
const MAX_FILE_NAME: usize = 200;

/// A provider's document name cut to [`MAX_FILE_NAME`] bytes (at a character boundary),
/// keeping its extension, so a long name is saved instead of failing the whole fetch.
fn shorten_file_name(name: &str) -> String {
    if name.len() <= MAX_FILE_NAME {
        return name.to_owned();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if ext.len() <= 16 => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    let mut cut = MAX_FILE_NAME - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut])
}

#[derive(Debug, Serialize)]
struct Written {
    path: PathBuf,
    size: u64,
    sha256: String,
}

/// Decodes, checks (size, SHA-256, a plain file name) and writes each document atomically.
fn write_documents(
    docs: &SignedDocuments,
    out: &Path,
    force: bool,
) -> anyhow::Result<Vec<Written>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for doc in &docs.documents {
        let bytes = b64().decode(&doc.content_base64).map_err(|e| {
            crate::cli::refused(format!("document {:?} is not valid base64: {e}", doc.name))
        })?;
        let sha256 = crate::signing::sha256_hex(&bytes);
        if bytes.len() as u64 != doc.size || sha256 != doc.sha256 {
            return Err(crate::cli::refused(format!(
                "document {:?} is damaged (size or SHA-256 differ from the provider's); nothing written for it — fetch it again",
                doc.name
            )));
        }
        let plain = !doc.name.is_empty()
            && !doc.name.contains(['/', '\\', '\0'])
            && doc.name != "."
            && doc.name != "..";
        let mut name = if plain {
            shorten_file_name(&doc.name)
        } else {
            "document.pdf".to_owned()
        };
        let mut n = 1;
        while used.contains(&name) {
            n += 1;
            name = match doc.name.rsplit_once('.') {
                Some((stem, ext)) if plain => format!("{stem}-{n}.{ext}"),
                _ => format!("document-{n}.pdf"),
            };
        }
        used.push(name.clone());
        let path = out.join(&name);
        if path.exists() && !force {
            return Err(crate::cli::refused(format!(
                "{} already exists; use --force to replace it",
                path.display()
            )));
        }
        crate::store::write_atomic(&path, &bytes)?;
        written.push(Written {
            path,
            size: doc.size,
            sha256,
        });
    }
    Ok(written)
}

fn print_deposit(d: &Deposit) {
    println!(
        "{}  {}  {}  {}{}",
        d.deposit_id,
        d.state,
        d.provider_state.as_deref().unwrap_or("-"),
        d.file_name,
        d.deposited_on
            .as_deref()
            .map(|on| format!("  deposited {on}"))
            .unwrap_or_default()
    );
    for e in &d.errors {
        println!(
            "  error {}: {}",
            e.code.as_deref().unwrap_or("-"),
            e.message
        );
    }
}

/// Runs `passerelle invoice …`; the exit code follows the worst outcome of a batch.
pub async fn invoice(
    engine: &Engine,
    cmd: InvoiceCommand,
) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match cmd {
        InvoiceCommand::Submit {
            files,
            code,
            target,
        } => {
            let total = files.len();
            let started = std::time::Instant::now();
            let (mut refused, mut failed, mut deposited) = (0usize, 0usize, Vec::new());
            for (i, file) in files.iter().enumerate() {
                let input = InvoiceSubmission {
                    file_name: file_name(file),
                    content_base64: match std::fs::read(file) {
                        Ok(bytes) => b64().encode(bytes),
                        Err(e) => {
                            refused += 1;
                            println!(
                                "[{}/{total}] {} refused: cannot read it: {e}",
                                i + 1,
                                file.display()
                            );
                            continue;
                        }
                    },
                    dematerialisation_code: code.clone(),
                };
                match call::<EinvoiceSubmit>(engine, &target, &input).await {
                    Ok(d) => {
                        println!(
                            "[{}/{total}] {} → {} ({}, {} attempt{})",
                            i + 1,
                            file.display(),
                            d.deposit_id,
                            d.provider_format.as_deref().unwrap_or("?"),
                            d.attempts.unwrap_or(1),
                            if d.attempts.unwrap_or(1) == 1 {
                                ""
                            } else {
                                "s"
                            }
                        );
                        deposited.push(d);
                    }
                    Err(e) => {
                        let local = e.chain().any(|c| {
                            c.downcast_ref::<crate::runner::RunError>()
                                .is_some_and(|r| {
                                    matches!(
                                        r.kind(),
                                        Some(
                                            passerelle_plugin_api::ErrorKind::InvalidInput
                                                | passerelle_plugin_api::ErrorKind::Config
                                        )
                                    )
                                })
                        });
                        if local {
                            refused += 1;
                        } else {
                            failed += 1;
                        }
                        println!(
                            "[{}/{total}] {} {}: {}",
                            i + 1,
                            file.display(),
                            if local { "refused" } else { "failed" },
                            crate::redact::redact(&format!("{e:#}"))
                        );
                    }
                }
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} deposited, {refused} refused, {failed} failed in {secs:.1} s ({:.2} deposits/s)",
                deposited.len(),
                deposited.len() as f64 / secs.max(0.001)
            );
            if target.json {
                print_json(&deposited)?;
            }
            Ok(if refused > 0 {
                ExitCode::from(crate::cli::EXIT_REFUSED)
            } else if failed > 0 {
                ExitCode::from(crate::cli::EXIT_FAILED)
            } else {
                ExitCode::SUCCESS
            })
        }
        InvoiceCommand::Status { deposit, target } => {
            let d: Deposit = call::<EinvoiceStatus>(
                engine,
                &target,
                &DepositRef {
                    deposit_id: deposit,
                },
            )
            .await?;
            if target.json {
                print_json(&d)?;
            } else {
                print_deposit(&d);
            }
            Ok(ExitCode::SUCCESS)
        }
        InvoiceCommand::List {
            state,
            limit,
            target,
        } => {
            let state = state
                .map(|s| serde_json::from_value(serde_json::Value::String(s.clone())))
                .transpose()
                .map_err(|_| {
                    crate::cli::refused(
                        "--state: expected pending, integrated, partially_integrated or rejected",
                    )
                })?;
            let list: DepositList =
                call::<EinvoiceList>(engine, &target, &DepositFilter { state, limit }).await?;
            if target.json {
                print_json(&list)?;
            } else if list.deposits.is_empty() {
                println!("No deposits recorded.");
            } else {
                for d in &list.deposits {
                    print_deposit(d);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn calendar(engine: &Engine, cmd: CalendarCommand) -> anyhow::Result<()> {
    let CalendarCommand::Sync { input, target } = cmd;
    let text = match input.strip_prefix('@') {
        Some(path) => String::from_utf8_lossy(&read(Path::new(path))?).into_owned(),
        None => input,
    };
    let input: <CalendarSync as Operation>::Input = serde_json::from_str(&text)
        .map_err(|e| crate::cli::refused(format!("--input is not a calendar.sync input: {e}")))?;
    let out: CalendarSyncOutput = call::<CalendarSync>(engine, &target, &input).await?;
    if target.json {
        return print_json(&out);
    }
    for m in &out.mailboxes {
        println!(
            "{}: {} created, {} updated, {} unchanged, {} deleted, {} error(s)",
            m.mailbox,
            m.created,
            m.updated,
            m.unchanged,
            m.deleted,
            m.errors.len()
        );
        for e in &m.errors {
            println!(
                "  {}{:?} — {}",
                e.appointment_id
                    .as_deref()
                    .map(|a| format!("[{a}] "))
                    .unwrap_or_default(),
                e.kind,
                e.message
            );
        }
    }
    Ok(())
}

/// `passerelle capabilities`: what the ERP can call here, and which instances answer.
pub fn capabilities(engine: &Engine, json: bool) -> anyhow::Result<ExitCode> {
    let list = engine.capabilities()?;
    if json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("No capabilities: no plugin is loaded (see `passerelle plugins`).");
    }
    for c in &list {
        let instances = if c.instances.is_empty() {
            format!(
                "no instance; create one with `passerelle config create <id> --plugin {}`",
                c.plugins.first().map(String::as_str).unwrap_or("<plugin>")
            )
        } else {
            c.instances
                .iter()
                .map(|i| {
                    let state = if i.enabled { "enabled" } else { "disabled" };
                    format!("{} ({state})", i.id)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{:<22} {}\n{:<22} {instances}",
            c.operation,
            c.plugins.join(", "),
            ""
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `passerelle company <id>`: capability company.lookup.
pub async fn company(
    engine: &Engine,
    id: String,
    target: &super::flags::Target,
) -> anyhow::Result<ExitCode> {
    let instance = target
        .instance
        .as_deref()
        .map(super::instance_id)
        .transpose()?;
    let input = serde_json::to_value(CompanyQuery { id })?;
    let out = engine
        .invoke(
            CompanyLookup::NAME,
            input,
            instance.as_ref(),
            &crate::actor::cli_actor(),
        )
        .await?;
    if target.json {
        print_json(&out)?;
    } else {
        let company: Company = serde_json::from_value(out)?;
        print_company(&company);
    }
    Ok(ExitCode::SUCCESS)
}

/// `passerelle invoke <operation> --input <json>`: any operation, as the ERP calls it.
pub async fn invoke(
    engine: &Engine,
    operation: &str,
    input: &str,
    target: &super::flags::Target,
) -> anyhow::Result<ExitCode> {
    let instance = target
        .instance
        .as_deref()
        .map(super::instance_id)
        .transpose()?;
    let input: Value = serde_json::from_str(input)
        .context("--input is not valid JSON")
        .map_err(|e| {
            anyhow::Error::new(ConfigError::Provisioning {
                path: "--input".into(),
                reason: format!("{e:#}"),
            })
        })?;
    let out = engine
        .invoke(
            operation,
            input,
            instance.as_ref(),
            &crate::actor::cli_actor(),
        )
        .await?;
    print_json(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn print_company(c: &Company) {
    let name = c.legal_name.as_deref().unwrap_or("(name withheld)");
    println!("{name}");
    if let Some(t) = &c.trade_name {
        println!("  trade name:   {t}");
    }
    println!("  SIREN:        {}", c.siren);
    if let Some(s) = &c.siret {
        println!(
            "  SIRET:        {s}{}",
            if c.head_office { " (head office)" } else { "" }
        );
    }
    for line in &c.address_lines {
        println!("  address:      {line}");
    }
    let city = [c.postal_code.as_deref(), c.city.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !city.is_empty() {
        println!("                {city}");
    }
    if let Some(a) = &c.activity_code {
        println!("  activity:     {a}");
    }
    if let Some(l) = &c.legal_category {
        println!("  legal form:   {l}");
    }
    println!(
        "  status:       {}",
        if c.active { "active" } else { "closed" }
    );
    if !c.fully_public {
        println!("  note:         partially public: some data is withheld by INSEE");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signers_are_parsed_or_refused_with_an_example() {
        let s = parse_signer("Jeanne Martin <jeanne@example.com>").unwrap();
        assert_eq!(
            (
                s.first_name.as_str(),
                s.last_name.as_str(),
                s.email.as_str()
            ),
            ("Jeanne", "Martin", "jeanne@example.com")
        );
        let s = parse_signer("Marie de la Tour <m@x.fr>").unwrap();
        assert_eq!(s.last_name, "de la Tour");
        assert!(parse_signer("jeanne@example.com")
            .unwrap_err()
            .to_string()
            .contains("First Last <email>"));
    }

    #[test]
    fn fetched_documents_are_checked_and_never_escape_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"%PDF-1.4 signed";
        let doc = |name: &str| passerelle_plugin_api::capabilities::SignedDocument {
            name: name.to_owned(),
            content_base64: b64().encode(content),
            size: content.len() as u64,
            sha256: crate::signing::sha256_hex(content),
        };
        let docs = SignedDocuments {
            id: "t".into(),
            custom_id: None,
            documents: vec![doc("quote.pdf"), doc("../../etc/passwd"), doc("quote.pdf")],
            fetched_at_ms: 0,
        };
        let written = write_documents(&docs, dir.path(), false).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|w| w.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["quote.pdf", "document.pdf", "quote-2.pdf"]);
        assert!(
            write_documents(&docs, dir.path(), false).is_err(),
            "no overwrite without --force"
        );
        let mut bad = docs.clone();
        bad.documents[0].sha256 = "00".into();
        assert!(write_documents(&bad, &dir.path().join("x"), true)
            .unwrap_err()
            .to_string()
            .contains("damaged"));
    }
}
