-- The MoMo Collection Widget: per API user, the web origins allowed to use the widget and
-- the callback URL of its payments, set in the portal. The widget's subscription keys are
-- ordinary `subscription_keys` rows (product 'collection_widget'), created at start-up.
-- Handlers read the rows directly (no writer keeps them in memory), so they carry no `seq`.
CREATE TABLE widget_settings (
    api_user TEXT PRIMARY KEY REFERENCES api_users(id),
    -- A JSON array of strings; NULL until a list is set.
    allowed_origins TEXT,
    callback_url TEXT,
    updated_at_ms BIGINT NOT NULL
);
