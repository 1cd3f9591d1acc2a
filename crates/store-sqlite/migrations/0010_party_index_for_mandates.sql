-- Issue 17: the party index holds only the payments found by party (a payer's
-- pre-approvals, the direct debits under a mandate: PaymentKind::BY_PARTY). Every
-- request-to-pay entered it before, at a random place (the payer's number), and it was never
-- read for them. Queries by party repeat the condition, so the index still serves them.
DROP INDEX payments_by_party;
CREATE INDEX payments_by_party ON payments (api_user, party_id)
    WHERE kind IN ('preapproval', 'directdebit');
