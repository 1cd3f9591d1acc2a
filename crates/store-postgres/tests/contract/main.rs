//! The storage contract suite, run unchanged against SQLite and PostgreSQL.
//!
//! **Where it lives.** The suite (`suite.rs` beside this file) is written against the
//! platform's traits only. It sits in this crate's tests because this is the crate that
//! needs a second backend checked against the reference: `mkoba-store-sqlite` is a
//! dev-dependency here and never depends on this crate, so there is no cycle, no extra
//! crate, and neither store's library carries test code. `cargo test -p
//! mkoba-store-postgres` runs every contract test twice, as `sqlite::<name>` (in a
//! tempdir) and `postgres::<name>` (a database of its own on a throwaway server, see
//! `pg.rs`); a new backend adds one line to
//! `contract!` below.
//!
//! The `postgres_only` module checks what has no SQLite counterpart: the migration table,
//! refusing a newer schema, concurrent start-up, and connections the server closes.

mod nodes;
use mkoba_testkit::pg;
mod suite;

use mkoba_platform::store::{Journal, Reader};
use suite::{Open, Store};

fn sqlite() -> Store {
    let dir = tempfile::tempdir().expect("tempdir");
    let open: Open = Box::new(move || {
        let (journal, reader) = mkoba_store_sqlite::open(dir.path()).expect("open SQLite");
        (
            Box::new(journal) as Box<dyn Journal>,
            Box::new(reader) as Box<dyn Reader>,
        )
    });
    Store::new(open)
}

fn postgres() -> Store {
    let url = pg::database();
    let open: Open = Box::new(move || {
        let (journal, reader) = mkoba_store_postgres::open(&url).expect("open PostgreSQL");
        (
            Box::new(journal) as Box<dyn Journal>,
            Box::new(reader) as Box<dyn Reader>,
        )
    });
    Store::new(open)
}

/// One `#[test]` per suite function and backend.
macro_rules! contract {
    ($($name:ident),+ $(,)?) => {
        contract!(@backend sqlite; $($name),+);
        contract!(@backend postgres; $($name),+);
    };
    (@backend $backend:ident; $($name:ident),+) => {
        mod $backend {
            $(
                #[test]
                fn $name() {
                    crate::suite::$name(&mut crate::$backend());
                }
            )+
        }
    };
}

contract!(
    a_new_store_is_empty,
    a_committed_batch_is_read_back_by_load_and_the_reader,
    committed_rows_survive_reopening,
    an_empty_batch_commits_nothing,
    a_failed_commit_leaves_nothing_and_the_store_goes_on,
    a_pass_failing_half_way_through_commits_none_of_it,
    a_commit_conflicting_with_committed_rows_is_rejected_whole,
    subscription_keys_are_replaced_per_developer_product_and_slot,
    missing_keys_are_written_only_where_a_slot_has_no_key,
    bootstrap_adds_the_keys_the_sandbox_developer_lacks,
    the_first_token_secret_stands,
    payments_round_trip_every_field,
    taken_reference_ids_are_found_in_one_lookup,
    payment_updates_change_state_and_settled_payments_leave_the_pending_set,
    payments_of_party_are_one_users_kind_and_party_oldest_first,
    transfers_are_upserted_by_id_and_only_pending_ones_load,
    rows_written_twice_in_one_batch_end_as_written_last,
    accounts_of_every_owner_round_trip,
    load_takes_only_the_newest_idle_wallets,
    ledger_totals_sum_each_currency,
    outbox_rows_load_until_delivered_or_failed,
    callback_attempts_are_listed_oldest_first,
    first_attempts_stored_with_their_callbacks_are_listed_with_the_rest,
    api_keys_not_revoked_are_listed_and_revocation_is_scoped,
    an_api_user_holds_its_newest_api_keys_up_to_the_bound,
    api_users_are_listed_per_developer_newest_first,
    developer_accounts_are_found_by_email_and_id,
    the_sandbox_login_is_stored_with_its_password,
    sessions_are_created_read_and_deleted_and_expired_ones_swept,
    approval_mode_is_set_per_developer,
    used_auth_requests_are_found_kept_and_dropped_past_their_time,
    widget_settings_are_set_per_api_user_replaced_and_survive_reopening,
    payments_page_filters_and_paginates,
    payments_page_and_runs_keep_one_order_through_ties,
    a_search_reads_the_newest_of_its_range,
    payment_counts_are_per_operation_and_status,
    payment_stats_count_and_sum_per_bucket,
    latencies_are_sorted_and_scoped,
    the_collection_widget_filter_picks_the_widgets_invoices,
    waiting_payments_are_pending_approvable_msisdn_payments,
    mpesa_apps_are_upserted_by_developer_and_found_by_key_hash,
    payments_are_found_by_transaction_id,
    refunded_total_counts_refunds_that_have_not_failed,
    the_store_answers_inside_an_async_runtime,
    readers_on_many_threads_see_commits_as_they_land,
    a_large_batch_commits_in_one_transaction,
    accounts_are_created_with_a_status_and_changed_whole,
    sessions_of_a_developer_end_but_the_one_kept,
    a_developers_api_keys_are_revoked_together,
    phone_codes_are_set_replaced_and_deleted,
    mail_is_kept_listed_per_developer_claimed_and_updated,
    operators_and_go_live_requests_round_trip,
    test_clocks_are_created_advanced_deleted_and_survive_reopening,
);

mod postgres_only {
    use mkoba_platform::portal::PortalJournal as _;
    use mkoba_platform::store::{Journal as _, Reader as _};
    use mkoba_store_postgres::{SCHEMA_VERSION, migrate, open, schema_version};

    use crate::pg;

    #[test]
    fn an_empty_database_has_version_zero_until_migrated() {
        let url = pg::database();
        assert_eq!(schema_version(&url).unwrap(), 0);
        assert_eq!(migrate(&url).unwrap(), SCHEMA_VERSION);
        assert_eq!(schema_version(&url).unwrap(), SCHEMA_VERSION);
        // Migrating again, or opening, changes nothing.
        assert_eq!(migrate(&url).unwrap(), SCHEMA_VERSION);
        let (mut journal, _reader) = open(&url).unwrap();
        assert_eq!(journal.max_developer_id().unwrap(), 0);
        assert_eq!(schema_version(&url).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn the_party_index_holds_the_kinds_found_by_party() {
        use mkoba_platform::model::PaymentKind;
        let url = pg::database();
        migrate(&url).unwrap();
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let def: String = admin
            .query_one(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'payments_by_party'",
                &[],
            )
            .unwrap()
            .get(0);
        let named: Vec<PaymentKind> = PaymentKind::ALL
            .into_iter()
            .filter(|k| def.contains(&format!("'{}'", k.as_str())))
            .collect();
        assert_eq!(named, PaymentKind::BY_PARTY, "{def}");
    }

    #[test]
    fn a_database_newer_than_the_binary_is_refused() {
        let url = pg::database();
        migrate(&url).unwrap();
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .execute(
                "INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, 0)",
                &[&(SCHEMA_VERSION as i64 + 1)],
            )
            .unwrap();
        let e = open(&url).unwrap_err();
        assert!(e.0.contains("newer than this binary"), "{e}");
        let e = migrate(&url).unwrap_err();
        assert!(e.0.contains("newer than this binary"), "{e}");
        assert_eq!(schema_version(&url).unwrap(), SCHEMA_VERSION + 1);
    }

    #[test]
    fn nodes_starting_at_once_migrate_once() {
        let url = pg::database();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| open(&url).map(|_| ()).unwrap());
            }
        });
        assert_eq!(schema_version(&url).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_bad_or_unreachable_database_is_an_error() {
        assert!(open("postgresql://mkoba@127.0.0.1:notaport/x").is_err());
        // A port nobody listens on: pick one and let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = open(&format!("postgresql://mkoba@127.0.0.1:{port}/x")).unwrap_err();
        assert!(e.0.contains("postgres"), "{e}");
        let e = schema_version(&format!("postgresql://mkoba@127.0.0.1:{port}/x")).unwrap_err();
        assert!(e.0.contains("postgres"), "{e}");
    }

    #[test]
    fn connections_the_server_closes_are_replaced() {
        let url = pg::database();
        let (mut journal, reader) = open(&url).unwrap();
        let id = uuid::Uuid::new_v4();
        assert_eq!(reader.payment(&id).unwrap(), None);
        assert!(!journal.payment_exists(&id).unwrap());
        let database = url.rsplit('/').next().unwrap();
        pg::server().admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        ));
        // Reads go to a new connection without failing; so does the writer's next commit.
        assert_eq!(reader.payment(&id).unwrap(), None);
        assert!(!journal.payment_exists(&id).unwrap());
        journal
            .commit(&mkoba_platform::store::Batch {
                developers: vec![1],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(journal.max_developer_id().unwrap(), 1);
    }
}
