//! The payments the writer holds open (not final yet), and how many of them each developer
//! has: a developer may hold at most `--max-pending-per-developer` (half of
//! `--max-pending-payments` by default), so that one partner's
//! payments that never end (a test number that stays PENDING, invoices valid for a century)
//! cannot fill the bound and refuse every other partner's payments, now and after a restart.

use foldhash::HashMap;
use std::ops::Deref;

use uuid::Uuid;

use crate::model::Payment;

/// The developer counted for an API user the store does not know (none in practice).
pub(super) const UNKNOWN_DEVELOPER: i64 = 0;

/// Open payments by reference id; read as a map, changed through [`Open::insert`] and
/// [`Open::remove`], which keep the counts.
#[derive(Default)]
pub(super) struct Open {
    payments: HashMap<Uuid, Payment>,
    /// Per API user with open payments: its developer and how many it has.
    users: HashMap<Uuid, (i64, usize)>,
    /// Per developer with open payments: how many.
    developers: HashMap<i64, usize>,
}

impl Deref for Open {
    type Target = HashMap<Uuid, Payment>;

    fn deref(&self) -> &Self::Target {
        &self.payments
    }
}

impl Open {
    /// Holds a payment of an API user of `developer` (replacing the one of the same id, which
    /// is counted once).
    pub(super) fn insert(&mut self, payment: Payment, developer: i64) {
        let api_user = payment.api_user;
        if self
            .payments
            .insert(payment.reference_id, payment)
            .is_some()
        {
            return;
        }
        let user = self.users.entry(api_user).or_insert((developer, 0));
        user.1 += 1;
        *self.developers.entry(user.0).or_insert(0) += 1;
    }

    pub(super) fn remove(&mut self, id: &Uuid) -> Option<Payment> {
        let payment = self.payments.remove(id)?;
        if let Some(user) = self.users.get_mut(&payment.api_user) {
            user.1 -= 1;
            let developer = user.0;
            if user.1 == 0 {
                self.users.remove(&payment.api_user);
            }
            if let Some(n) = self.developers.get_mut(&developer) {
                *n -= 1;
                if *n == 0 {
                    self.developers.remove(&developer);
                }
            }
        }
        Some(payment)
    }

    pub(super) fn clear(&mut self) {
        self.payments.clear();
        self.users.clear();
        self.developers.clear();
    }

    /// How many open payments the developer's API users have.
    pub(super) fn of_developer(&self, developer: i64) -> usize {
        self.developers.get(&developer).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(api_user: Uuid) -> Payment {
        Payment::accepted(super::super::tests::new_payment(api_user), 0, None)
    }

    #[test]
    fn counts_follow_inserts_and_removals_per_developer() {
        let mut open = Open::default();
        let (a1, a2, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let first = payment(a1);
        let id = first.reference_id;
        open.insert(first.clone(), 7);
        open.insert(payment(a2), 7);
        open.insert(payment(b), 8);
        // The same payment again (a catch-up) is counted once.
        open.insert(first, 7);
        assert_eq!(
            (open.len(), open.of_developer(7), open.of_developer(8)),
            (3, 2, 1)
        );
        assert!(open.remove(&id).is_some());
        assert!(open.remove(&id).is_none());
        assert_eq!(open.of_developer(7), 1);
        assert_eq!(
            open.users.len(),
            2,
            "an API user with none open is forgotten"
        );
        open.clear();
        assert_eq!(open.of_developer(8), 0);
        assert!(open.developers.is_empty());
    }
}
