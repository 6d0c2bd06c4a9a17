//! The emulator's state: issued tokens, quota windows, deposits and what they become,
//! the structures detached from the technical account, scripted failures and counters.

use super::*;

/// A deposit and what the emulator decided it becomes.
#[derive(Debug)]
pub(super) struct Deposit {
    pub(super) number: String,
    pub(super) login: String,
    pub(super) file_name: String,
    pub(super) syntax: String,
    pub(super) size_bytes: usize,
    pub(super) invoice_number: Option<String>,
    pub(super) deposited_secs: u64,
    pub(super) outcome: DepositOutcome,
    pub(super) technical_errors: Vec<Value>,
    pub(super) invoice_errors: Vec<Value>,
    pub(super) consultations: u32,
    pub(super) state_changed_secs: u64,
    pub(super) last_state: String,
    /// `identifiantFactureCPP` of its invoice once integrated.
    pub(super) invoice_id: u64,
    /// Invoice searches seen since integration (drives the status progression).
    pub(super) invoice_searches: usize,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) opts: ChorusProOptions,
    pub(super) tokens: Mutex<HashMap<String, Instant>>,
    pub(super) issued: AtomicU64,
    pub(super) token_requests: AtomicUsize,
    pub(super) api_requests: AtomicUsize,
    pub(super) quota_refusals: AtomicUsize,
    pub(super) fail_next: AtomicU32,
    /// Admitted requests of the last second, for the quota.
    pub(super) window: RollingWindow,
    /// (UTC day, requests admitted that day).
    pub(super) day: DailyCount,
    pub(super) admitted_log: Mutex<Vec<Instant>>,
    pub(super) deposits: Mutex<Vec<Deposit>>,
    pub(super) forced: Mutex<HashMap<String, DepositOutcome>>,
    pub(super) deposit_seq: AtomicU64,
    pub(super) detached: Mutex<Vec<String>>,
    pub(super) health: Mutex<HealthShape>,
    pub(super) invoice_status: Mutex<HashMap<String, String>>,
    pub(super) invoice_searches: AtomicUsize,
}

impl Shared {
    pub(super) fn new(opts: ChorusProOptions) -> Self {
        Shared {
            opts,
            tokens: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            token_requests: AtomicUsize::new(0),
            api_requests: AtomicUsize::new(0),
            quota_refusals: AtomicUsize::new(0),
            fail_next: AtomicU32::new(0),
            window: RollingWindow::new(),
            day: DailyCount::new(),
            admitted_log: Mutex::new(Vec::new()),
            deposits: Mutex::new(Vec::new()),
            forced: Mutex::new(HashMap::new()),
            deposit_seq: AtomicU64::new(0),
            detached: Mutex::new(Vec::new()),
            health: Mutex::new(HealthShape::StringCode),
            invoice_status: Mutex::new(HashMap::new()),
            invoice_searches: AtomicUsize::new(0),
        }
    }
}
