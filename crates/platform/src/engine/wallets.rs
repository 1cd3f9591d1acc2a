//! Customer wallets in memory, bounded (issue 17).
//!
//! The writer decides on balances it holds in memory, but a sandbox meets a new payer with
//! almost every payment: a million payments would mean a million wallets held for ever.
//! So at most [`PlatformConfig::wallets_in_memory`] wallets stay in memory. After a commit
//! that left more, the least recently used idle ones (nothing reserved on them, nothing
//! unwritten) are dropped, down to nine tenths of the bound; their state is on disk. A
//! wallet the writer then needs and does not hold is read back from the database
//! ([`Journal::ledger_account`]) before it is used, so a balance continues where it was.
//! Until the first wallet is dropped, every wallet is in memory and the database is not
//! asked about new payers. A start loads the wallets with money reserved and the newest
//! idle ones, at most the bound ([`Journal::load`]); if that many were there, others may
//! be on disk only and are read back the same way.
//!
//! Partner, short-code and funding accounts are few and always held.
//!
//! [`PlatformConfig::wallets_in_memory`]: crate::PlatformConfig::wallets_in_memory
//! [`Journal::ledger_account`]: crate::store::Journal::ledger_account
//! [`Journal::load`]: crate::store::Journal::load

use foldhash::{HashMap, HashSet, HashSetExt};

use mkoba_ledger::{AccountId, Currency, make_room};

use super::Engine;
use crate::model::AccountOwner;
use crate::store::StoreError;

/// The wallets held, by the pass that last used each.
#[derive(Debug, Default)]
pub(super) struct Wallets {
    last_used: HashMap<AccountId, u64>,
    /// Passes so far: the clock of `last_used`.
    pass: u64,
    /// Some wallet of the database is not in memory: a wallet not held may exist on disk.
    partial: bool,
    /// Wallets this pass looked up at once and found on no disk
    /// ([`Engine::look_up_wallets`]): opened new without asking again.
    absent: HashSet<(String, Currency)>,
}

impl Wallets {
    /// Forgets every wallet (the writer reloads its state).
    pub(super) fn reset(&mut self) {
        self.last_used.clear();
        self.partial = false;
        self.absent.clear();
    }

    pub(super) fn used(&mut self, id: AccountId) {
        self.last_used.insert(id, self.pass);
    }

    /// Some wallets of the database were not loaded: those not held are looked up.
    pub(super) fn some_on_disk_only(&mut self) {
        self.partial = true;
    }

    pub(super) fn held(&self) -> usize {
        self.last_used.len()
    }
}

impl Engine {
    /// The account of `owner` if it exists: held in memory, or (a wallet dropped from
    /// memory) read back from the database and held again.
    pub(super) fn known_account(
        &mut self,
        owner: &AccountOwner,
        currency: Currency,
    ) -> Result<Option<AccountId>, StoreError> {
        let wallet = matches!(owner, AccountOwner::Wallet(_));
        let key = (owner.key(), currency);
        let id = match self.owners.get(&key) {
            Some(id) => *id,
            None if wallet && self.wallets.partial && !self.wallets.absent.contains(&key) => {
                let Some(account) = self.journal.ledger_account(owner, currency)? else {
                    return Ok(None);
                };
                self.hold_read_back(key, account)
            }
            None => return Ok(None),
        };
        if wallet {
            self.wallets.used(id);
        }
        Ok(Some(id))
    }

    /// Before a pass applies its commands: reads back, in one query, the dropped wallets
    /// of the payers its new payments name, and notes those found nowhere, so that the pass
    /// asks the database nothing more about them (one query per pass instead of one per new
    /// payer). Nothing to do until a wallet has been dropped. A failed look-up only means
    /// each payment asks on its own.
    pub(super) fn look_up_wallets(&mut self, commands: &[super::Command]) {
        self.wallets.absent.clear();
        if !self.wallets.partial {
            return;
        }
        let mut wanted: Vec<(AccountOwner, Currency)> = Vec::new();
        let mut keys = HashSet::new();
        for command in commands {
            let super::Command::CreatePayment(new, _) = command else {
                continue;
            };
            let (owner, currency) = (
                AccountOwner::Wallet(new.party.wallet_key()),
                new.amount.currency(),
            );
            let key = (owner.key(), currency);
            if !self.owners.contains_key(&key) && keys.insert(key) {
                wanted.push((owner, currency));
            }
        }
        if wanted.is_empty() {
            return;
        }
        let found = match self.journal.ledger_accounts(&wanted) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "looking up a batch of wallets failed");
                return;
            }
        };
        for (owner, account) in found {
            let key = (owner.key(), account.currency);
            keys.remove(&key);
            let id = self.hold_read_back(key, account);
            self.wallets.used(id);
        }
        self.wallets.absent = keys;
    }

    /// Holds a wallet read back from the database in memory again.
    fn hold_read_back(
        &mut self,
        key: (String, Currency),
        account: mkoba_ledger::Account,
    ) -> AccountId {
        let id = account.id;
        self.ledger.restore_account(account);
        self.owners.insert(key, id);
        self.settings.metrics.wallets_read_back.inc();
        id
    }

    /// After a commit: drops the least recently used idle wallets beyond the bound.
    pub(super) fn drop_idle_wallets(&mut self) {
        self.wallets.pass += 1;
        let bound = self.settings.wallets_in_memory;
        if self.wallets.held() <= bound {
            return;
        }
        let keep = bound - bound / 10;
        let mut by_age: Vec<(u64, AccountId)> = self
            .wallets
            .last_used
            .iter()
            .map(|(id, pass)| (*pass, *id))
            .collect();
        by_age.sort_unstable();
        let mut dropped = HashSet::new();
        for (_, id) in by_age {
            if self.wallets.held() - dropped.len() <= keep {
                break;
            }
            if self.ledger.forget_account(id) {
                dropped.insert(id);
            }
        }
        if dropped.is_empty() {
            return;
        }
        self.wallets.last_used.retain(|id, _| !dropped.contains(id));
        self.owners.retain(|_, id| !dropped.contains(id));
        // Until the next drop the maps take at most the wallets up to the bound and those of
        // one more pass (a command names one new wallet at most; twice that for margin):
        // room for them now, so that the deleted slots of these removals never make a map
        // double (`make_room`).
        let room = bound - keep + 2 * self.settings.max_batch;
        make_room(&mut self.wallets.last_used, room);
        make_room(&mut self.owners, room);
        self.ledger.make_room(room);
        self.wallets.partial = true;
        self.settings
            .metrics
            .wallets_dropped
            .inc_by(dropped.len() as u64);
    }
}
