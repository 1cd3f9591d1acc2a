//! Integration tests: the real server on 127.0.0.1:0, spoken to over HTTP.

mod account;
mod callbacks;
mod cli;
mod conformance;
mod consent;
mod crash;
mod environments;
mod helpers;
mod mpesa_async;
mod mpesa_cli;
mod mpesa_openapi;
mod mpesa_ops;
mod mpesa_session;
mod mpesa_support;
mod mpesa_v1x;
mod mtn_momo_npm;
mod nodes;
mod openapi;
mod payouts;
mod portal;
mod portal_browser;
mod postgres;
mod provisioning;
mod request_to_pay;
mod token;
mod v2;
