//! The emulator's state: the account, transactions in memory with their signers and
//! documents, and what a signer's action or the test's control does to them.

use super::*;

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) opts: UniversignOptions,
    pub(super) root: OnceLock<String>,
    pub(super) transactions: Mutex<BTreeMap<String, Transaction>>,
    pub(super) injected: Mutex<HashMap<String, i32>>,
    pub(super) calls: Mutex<Vec<(String, Option<String>)>>,
    pub(super) unavailable: AtomicBool,
    pub(super) requests: AtomicU64,
    pub(super) serial: AtomicU64,
}

#[derive(Debug, Clone)]
pub(super) struct Transaction {
    pub(super) serial: u64,
    pub(super) id: String,
    pub(super) custom_id: Option<String>,
    pub(super) description: Option<String>,
    pub(super) status: TxStatus,
    pub(super) created: String,
    pub(super) current_signer: usize,
    pub(super) signers: Vec<Signer>,
    pub(super) documents: Vec<Document>,
    pub(super) certificate_type: String,
}

#[derive(Debug, Clone)]
pub(super) struct Signer {
    pub(super) id: String,
    pub(super) first_name: String,
    pub(super) last_name: String,
    pub(super) email: String,
    pub(super) status: &'static str,
    pub(super) action_date: Option<String>,
    pub(super) identification: String,
    pub(super) success_url: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Document {
    pub(super) name: String,
    pub(super) content: Vec<u8>,
    pub(super) placements: Vec<Placement>,
}

impl Transaction {
    pub(super) fn view(&self) -> TransactionView {
        TransactionView {
            id: self.id.clone(),
            status: self.status,
            custom_id: self.custom_id.clone(),
            signers: self
                .signers
                .iter()
                .map(|s| {
                    (
                        s.first_name.clone(),
                        s.last_name.clone(),
                        s.email.clone(),
                        s.status.to_owned(),
                    )
                })
                .collect(),
            documents: self.documents.iter().map(|d| d.name.clone()).collect(),
            placements: self
                .documents
                .iter()
                .map(|d| d.placements.clone())
                .collect(),
            certificate_type: self.certificate_type.clone(),
            identification: self
                .signers
                .iter()
                .map(|s| (s.identification.clone(), s.success_url.clone()))
                .collect(),
        }
    }

    /// The submitted PDF with a stamp naming the signers, as the signed version.
    pub(super) fn signed(&self, doc: &Document) -> Vec<u8> {
        let mut bytes = doc.content.clone();
        let names = self
            .signers
            .iter()
            .map(|s| format!("{} {}", s.first_name, s.last_name))
            .collect::<Vec<_>>()
            .join(", ");
        bytes.extend_from_slice(
            format!(
                "\n% Universign emulator: transaction {} signed by {names}\n%%EOF\n",
                self.id
            )
            .as_bytes(),
        );
        bytes
    }
}

impl Shared {
    pub(super) fn new(opts: UniversignOptions) -> Self {
        Shared {
            opts,
            root: OnceLock::new(),
            transactions: Mutex::new(BTreeMap::new()),
            injected: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            unavailable: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            serial: AtomicU64::new(0),
        }
    }

    /// A fresh UUID-shaped id, unique within this emulator.
    pub(super) fn new_id(&self) -> String {
        let n = self.serial.fetch_add(1, Ordering::SeqCst) + 1;
        let nanos = dates::unix_nanos() as u64;
        let mut x = nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (a, b) = (next(), next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a as u16) & 0x0fff,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    pub(super) fn signing_url(&self, signer_id: &str) -> String {
        format!(
            "{}/fr/signature/?id={signer_id}",
            self.root
                .get()
                .map(String::as_str)
                .unwrap_or("http://127.0.0.1")
        )
    }

    pub(super) fn signer_action(
        &self,
        id: &str,
        index: usize,
        action: SignerAction,
    ) -> Result<(), String> {
        let mut txs = lock(&self.transactions);
        let tx = txs
            .get_mut(id)
            .ok_or_else(|| format!("no transaction {id}"))?;
        if tx.status != TxStatus::Ready {
            return Err(format!(
                "transaction {id} is {}, not ready",
                tx.status.as_str()
            ));
        }
        let count = tx.signers.len();
        let signer = tx
            .signers
            .get(index)
            .ok_or_else(|| format!("transaction {id} has {count} signer(s), no signer {index}"))?;
        if signer.status == "signed" {
            return Err(format!("signer {index} of {id} already signed"));
        }
        if index != tx.current_signer {
            return Err(format!(
                "it is not signer {index}'s turn in {id}: signer {} signs first",
                tx.current_signer
            ));
        }
        let now = now_xmlrpc();
        let signer = &mut tx.signers[index];
        signer.action_date = Some(now);
        match action {
            SignerAction::Access => signer.status = "accessed",
            SignerAction::Refuse => {
                signer.status = "canceled";
                tx.status = TxStatus::Canceled;
            }
            SignerAction::Sign => {
                signer.status = "signed";
                tx.current_signer += 1;
                match tx.signers.get_mut(index + 1) {
                    Some(next) => next.status = "ready",
                    None => tx.status = TxStatus::Completed,
                }
            }
        }
        Ok(())
    }

    pub(super) fn finish(&self, id: &str, status: TxStatus) -> Result<(), String> {
        let mut txs = lock(&self.transactions);
        let tx = txs
            .get_mut(id)
            .ok_or_else(|| format!("no transaction {id}"))?;
        if tx.status != TxStatus::Ready {
            return Err(format!(
                "transaction {id} is already {}",
                tx.status.as_str()
            ));
        }
        tx.status = status;
        if status == TxStatus::Failed {
            if let Some(s) = tx.signers.get_mut(tx.current_signer) {
                s.status = "failed";
            }
        }
        Ok(())
    }
}
