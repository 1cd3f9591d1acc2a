//! The money core of Mkoba: integer amounts, accounts and two-phase transfers.
//!
//! This crate is pure: no I/O, no async, no clock. The platform's single writer owns one
//! [`Ledger`], applies transfers to it in memory and persists the touched accounts and the
//! transfers it produced in the same database transaction as the state change that caused
//! them. Semantics follow TigerBeetle's: every account carries pending and posted debits and
//! credits; a pending transfer reserves money on both sides, posting makes it final and
//! voiding releases it. A reversal or refund is a new transfer, never an edit.
//!
//! Invariant, checked by [`Ledger::check_balanced`]: for every currency the sum of all debits
//! equals the sum of all credits, pending and posted separately.

mod money;

pub use money::{AmountError, Currency, CurrencyError, Money};

use foldhash::{HashMap, HashSet};
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash};

/// Identifies an account inside one ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub u64);

/// Identifies a transfer inside one ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub u64);

/// How far an account may be debited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Debits (pending and posted) may never exceed posted credits: a customer wallet or a
    /// partner float.
    NoOverdraft,
    /// No limit: the sandbox's funding account that mints opening balances.
    Unbounded,
}

impl Limit {
    /// The stable name stored by the persistence layer.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::NoOverdraft => "no_overdraft",
            Limit::Unbounded => "unbounded",
        }
    }

    /// Parses [`Limit::as_str`] back.
    pub fn parse(s: &str) -> Option<Limit> {
        match s {
            "no_overdraft" => Some(Limit::NoOverdraft),
            "unbounded" => Some(Limit::Unbounded),
            _ => None,
        }
    }
}

/// One account's totals, in minor units of its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub currency: Currency,
    pub limit: Limit,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
}

impl Account {
    /// A new, empty account.
    pub fn new(id: AccountId, currency: Currency, limit: Limit) -> Account {
        Account {
            id,
            currency,
            limit,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
        }
    }

    /// What the holder may still spend: posted credits less posted and reserved debits.
    pub fn available(&self) -> i64 {
        self.credits_posted - self.debits_posted - self.debits_pending
    }

    /// The posted balance (credits less debits), ignoring reservations.
    pub fn posted_balance(&self) -> i64 {
        self.credits_posted - self.debits_posted
    }
}

/// The state of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    Pending,
    Posted,
    Voided,
}

impl TransferState {
    /// The stable name stored by the persistence layer.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Pending => "pending",
            TransferState::Posted => "posted",
            TransferState::Voided => "voided",
        }
    }

    /// Parses [`TransferState::as_str`] back.
    pub fn parse(s: &str) -> Option<TransferState> {
        match s {
            "pending" => Some(TransferState::Pending),
            "posted" => Some(TransferState::Posted),
            "voided" => Some(TransferState::Voided),
            _ => None,
        }
    }
}

/// A movement of `amount` minor units from `debit` to `credit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: i64,
    pub currency: Currency,
    pub state: TransferState,
}

/// Why the ledger refused an operation. Nothing has changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("account {0:?} does not exist")]
    NoSuchAccount(AccountId),
    #[error("account {0:?} already exists")]
    AccountExists(AccountId),
    #[error("transfer {0:?} already exists")]
    TransferExists(TransferId),
    #[error("transfer {0:?} is not pending")]
    NotPending(TransferId),
    #[error("amount must be positive, got {0}")]
    NonPositiveAmount(i64),
    #[error("debit and credit account must differ")]
    SameAccount,
    #[error("accounts hold different currencies ({0} and {1})")]
    CurrencyMismatch(Currency, Currency),
    #[error("account {0:?} has insufficient funds")]
    InsufficientFunds(AccountId),
    #[error("amount overflows the account totals")]
    Overflow,
}

/// Makes sure `map` can take `room` more entries without growing: when removals have worn
/// its free room down, rebuilds it at the size its entries and `room` need.
///
/// A hash table marks the slot of a removed entry deleted rather than free, and only an
/// insert into a free slot uses up its room to grow. A map that removes about as many
/// entries as it takes (a bounded cache) thus runs out of free slots and doubles, although
/// it holds no more than before; rebuilding clears the deleted slots. `capacity()` counts
/// the entries and the free slots left, so it shows the wear. Issue 17: the writer's wallet
/// maps, bounded at 100,000 wallets, stood at room for 229,376 after some churn.
pub fn make_room<K: Eq + Hash, V, S: BuildHasher + Clone>(
    map: &mut std::collections::HashMap<K, V, S>,
    room: usize,
) {
    if map.capacity() - map.len() >= room {
        return;
    }
    let mut fresh =
        std::collections::HashMap::with_capacity_and_hasher(map.len() + room, map.hasher().clone());
    fresh.extend(map.drain());
    *map = fresh;
}

/// Accounts and pending transfers held in memory by the writer.
#[derive(Debug, Default)]
pub struct Ledger {
    accounts: HashMap<AccountId, Account>,
    pending: HashMap<TransferId, Transfer>,
    touched: HashSet<AccountId>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Restores an account as persisted (start-up).
    pub fn restore_account(&mut self, account: Account) {
        self.accounts.insert(account.id, account);
    }

    /// Restores a pending transfer as persisted (start-up). Its amounts must already be part
    /// of the restored accounts' pending totals.
    pub fn restore_pending(&mut self, transfer: Transfer) {
        self.pending.insert(transfer.id, transfer);
    }

    /// Forgets a pending transfer that was posted or voided elsewhere (another writer of
    /// the same database); the accounts' totals come from their own restored rows.
    pub fn forget_pending(&mut self, id: TransferId) {
        self.pending.remove(&id);
    }

    /// Opens a new, empty account.
    pub fn open_account(
        &mut self,
        id: AccountId,
        currency: Currency,
        limit: Limit,
    ) -> Result<&Account, LedgerError> {
        if self.accounts.contains_key(&id) {
            return Err(LedgerError::AccountExists(id));
        }
        self.touched.insert(id);
        Ok(self
            .accounts
            .entry(id)
            .or_insert_with(|| Account::new(id, currency, limit)))
    }

    /// Drops an account from memory (its state is on disk), unless money is reserved on it
    /// or it changed since the last [`Ledger::take_touched`]: `false` then, and it stays.
    pub fn forget_account(&mut self, id: AccountId) -> bool {
        let idle = self.accounts.get(&id).is_some_and(|a| {
            a.debits_pending == 0 && a.credits_pending == 0 && !self.touched.contains(&id)
        });
        if idle {
            self.accounts.remove(&id);
        }
        idle
    }

    /// Makes sure `room` more accounts can be held without the account map growing
    /// ([`make_room`]); called after accounts were forgotten.
    pub fn make_room(&mut self, room: usize) {
        make_room(&mut self.accounts, room);
    }

    /// The account with this id.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// A pending transfer.
    pub fn pending(&self, id: TransferId) -> Option<&Transfer> {
        self.pending.get(&id)
    }

    /// Creates a transfer. With `pending` the money is reserved (debits and credits pending);
    /// without, it is posted at once.
    pub fn create_transfer(
        &mut self,
        id: TransferId,
        debit: AccountId,
        credit: AccountId,
        amount: i64,
        pending: bool,
    ) -> Result<Transfer, LedgerError> {
        if self.pending.contains_key(&id) {
            return Err(LedgerError::TransferExists(id));
        }
        if amount <= 0 {
            return Err(LedgerError::NonPositiveAmount(amount));
        }
        if debit == credit {
            return Err(LedgerError::SameAccount);
        }
        let d = self
            .accounts
            .get(&debit)
            .ok_or(LedgerError::NoSuchAccount(debit))?;
        let c = self
            .accounts
            .get(&credit)
            .ok_or(LedgerError::NoSuchAccount(credit))?;
        if d.currency != c.currency {
            return Err(LedgerError::CurrencyMismatch(d.currency, c.currency));
        }
        if d.limit == Limit::NoOverdraft && d.available() < amount {
            return Err(LedgerError::InsufficientFunds(debit));
        }
        let currency = d.currency;
        // Compute both sides before mutating so a failure leaves nothing half-applied.
        let (new_d, new_c) = if pending {
            (
                d.debits_pending.checked_add(amount),
                c.credits_pending.checked_add(amount),
            )
        } else {
            (
                d.debits_posted.checked_add(amount),
                c.credits_posted.checked_add(amount),
            )
        };
        let (Some(new_d), Some(new_c)) = (new_d, new_c) else {
            return Err(LedgerError::Overflow);
        };
        let d = self.accounts.get_mut(&debit).expect("checked above");
        if pending {
            d.debits_pending = new_d;
        } else {
            d.debits_posted = new_d;
        }
        let c = self.accounts.get_mut(&credit).expect("checked above");
        if pending {
            c.credits_pending = new_c;
        } else {
            c.credits_posted = new_c;
        }
        self.touched.insert(debit);
        self.touched.insert(credit);
        let transfer = Transfer {
            id,
            debit,
            credit,
            amount,
            currency,
            state: if pending {
                TransferState::Pending
            } else {
                TransferState::Posted
            },
        };
        if pending {
            self.pending.insert(id, transfer.clone());
        }
        Ok(transfer)
    }

    /// Makes a pending transfer final.
    pub fn post_pending(&mut self, id: TransferId) -> Result<Transfer, LedgerError> {
        self.finish_pending(id, true)
    }

    /// Releases a pending transfer's reservation.
    pub fn void_pending(&mut self, id: TransferId) -> Result<Transfer, LedgerError> {
        self.finish_pending(id, false)
    }

    fn finish_pending(&mut self, id: TransferId, post: bool) -> Result<Transfer, LedgerError> {
        let mut t = self
            .pending
            .remove(&id)
            .ok_or(LedgerError::NotPending(id))?;
        let d = self
            .accounts
            .get_mut(&t.debit)
            .expect("pending debit exists");
        d.debits_pending -= t.amount;
        if post {
            d.debits_posted += t.amount;
        }
        let c = self
            .accounts
            .get_mut(&t.credit)
            .expect("pending credit exists");
        c.credits_pending -= t.amount;
        if post {
            c.credits_posted += t.amount;
        }
        self.touched.insert(t.debit);
        self.touched.insert(t.credit);
        t.state = if post {
            TransferState::Posted
        } else {
            TransferState::Voided
        };
        Ok(t)
    }

    /// The accounts changed since the last call, for the persistence layer.
    pub fn take_touched(&mut self) -> Vec<Account> {
        let mut ids: Vec<AccountId> = self.touched.drain().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| self.accounts.get(&id).cloned())
            .collect()
    }

    /// Checks that, per currency, debits equal credits (pending and posted separately) and
    /// that no limited account is overdrawn. Returns a description of the first violation.
    pub fn check_balanced(&self) -> Result<(), String> {
        let mut sums: BTreeMap<Currency, [i128; 4]> = BTreeMap::new();
        for a in self.accounts.values() {
            let s = sums.entry(a.currency).or_default();
            s[0] += i128::from(a.debits_pending);
            s[1] += i128::from(a.credits_pending);
            s[2] += i128::from(a.debits_posted);
            s[3] += i128::from(a.credits_posted);
            if a.limit == Limit::NoOverdraft && a.available() < 0 {
                return Err(format!("account {:?} is overdrawn", a.id));
            }
        }
        for (currency, s) in sums {
            if s[0] != s[1] || s[2] != s[3] {
                return Err(format!(
                    "{currency}: pending debits {} credits {}, posted debits {} credits {}",
                    s[0], s[1], s[2], s[3]
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn a_bounded_map_that_makes_room_after_each_removal_never_doubles() {
        // A cache of at most 100,000 entries that drops the oldest down to 90,000 whenever
        // it holds more, as the writer's wallets do by default, over a million new keys.
        let (bound, keep) = (100_000, 90_000);
        let mut map: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        let mut largest = 0;
        for key in 0..1_000_000u64 {
            map.insert(key, key);
            if map.len() > bound {
                let first_kept = key + 1 - keep as u64;
                map.retain(|k, _| *k >= first_kept);
                make_room(&mut map, bound - keep + 1);
                largest = largest.max(map.capacity());
            }
        }
        assert!((keep..=bound).contains(&map.len()));
        // 100,000 entries fit a table of 131,072 slots (room for 114,688 entries); the
        // deleted slots of the removals would otherwise make it double, to room for 229,376.
        assert!(largest <= 114_688, "room grew to {largest}");
    }

    fn ledger() -> Ledger {
        let mut l = Ledger::new();
        l.open_account(AccountId(1), eur(), Limit::Unbounded)
            .unwrap();
        l.open_account(AccountId(2), eur(), Limit::NoOverdraft)
            .unwrap();
        l.open_account(AccountId(3), eur(), Limit::NoOverdraft)
            .unwrap();
        l
    }

    #[test]
    fn funding_then_pending_then_post_moves_money_and_stays_balanced() {
        let mut l = ledger();
        l.create_transfer(TransferId(1), AccountId(1), AccountId(2), 1_000, false)
            .unwrap();
        l.create_transfer(TransferId(2), AccountId(2), AccountId(3), 400, true)
            .unwrap();
        assert_eq!(l.account(AccountId(2)).unwrap().available(), 600);
        assert_eq!(l.account(AccountId(3)).unwrap().available(), 0);
        l.check_balanced().unwrap();
        let t = l.post_pending(TransferId(2)).unwrap();
        assert_eq!(t.state, TransferState::Posted);
        assert_eq!(l.account(AccountId(2)).unwrap().posted_balance(), 600);
        assert_eq!(l.account(AccountId(3)).unwrap().posted_balance(), 400);
        l.check_balanced().unwrap();
    }

    #[test]
    fn voiding_releases_the_reservation() {
        let mut l = ledger();
        l.create_transfer(TransferId(1), AccountId(1), AccountId(2), 500, false)
            .unwrap();
        l.create_transfer(TransferId(2), AccountId(2), AccountId(3), 500, true)
            .unwrap();
        assert_eq!(l.account(AccountId(2)).unwrap().available(), 0);
        l.void_pending(TransferId(2)).unwrap();
        assert_eq!(l.account(AccountId(2)).unwrap().available(), 500);
        assert_eq!(l.account(AccountId(3)).unwrap().posted_balance(), 0);
        assert_eq!(
            l.void_pending(TransferId(2)),
            Err(LedgerError::NotPending(TransferId(2)))
        );
        l.check_balanced().unwrap();
    }

    #[test]
    fn transfer_with_insufficient_funds_is_rejected_and_changes_nothing() {
        let mut l = ledger();
        l.create_transfer(TransferId(1), AccountId(1), AccountId(2), 100, false)
            .unwrap();
        let before = l.account(AccountId(2)).unwrap().clone();
        assert_eq!(
            l.create_transfer(TransferId(2), AccountId(2), AccountId(3), 101, true),
            Err(LedgerError::InsufficientFunds(AccountId(2)))
        );
        assert_eq!(l.account(AccountId(2)).unwrap(), &before);
        l.check_balanced().unwrap();
    }

    #[test]
    fn reservations_count_against_what_is_available() {
        let mut l = ledger();
        l.create_transfer(TransferId(1), AccountId(1), AccountId(2), 100, false)
            .unwrap();
        l.create_transfer(TransferId(2), AccountId(2), AccountId(3), 60, true)
            .unwrap();
        assert!(matches!(
            l.create_transfer(TransferId(3), AccountId(2), AccountId(3), 60, true),
            Err(LedgerError::InsufficientFunds(_))
        ));
    }

    #[test]
    fn invalid_transfers_are_refused() {
        let mut l = ledger();
        assert_eq!(
            l.create_transfer(TransferId(1), AccountId(1), AccountId(1), 5, false),
            Err(LedgerError::SameAccount)
        );
        assert_eq!(
            l.create_transfer(TransferId(1), AccountId(1), AccountId(2), 0, false),
            Err(LedgerError::NonPositiveAmount(0))
        );
        assert_eq!(
            l.create_transfer(TransferId(1), AccountId(1), AccountId(9), 5, false),
            Err(LedgerError::NoSuchAccount(AccountId(9)))
        );
        l.open_account(
            AccountId(4),
            Currency::parse("UGX").unwrap(),
            Limit::NoOverdraft,
        )
        .unwrap();
        assert!(matches!(
            l.create_transfer(TransferId(1), AccountId(1), AccountId(4), 5, false),
            Err(LedgerError::CurrencyMismatch(_, _))
        ));
    }

    #[test]
    fn touched_accounts_are_reported_once() {
        let mut l = ledger();
        assert_eq!(l.take_touched().len(), 3);
        l.create_transfer(TransferId(1), AccountId(1), AccountId(2), 5, false)
            .unwrap();
        let touched: Vec<_> = l.take_touched().into_iter().map(|a| a.id).collect();
        assert_eq!(touched, vec![AccountId(1), AccountId(2)]);
        assert!(l.take_touched().is_empty());
    }
}
