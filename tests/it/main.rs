//! One integration binary: the real service against a Bot API fake (HTTP on loopback) and an
//! SMTP sink (SMTP on loopback).

mod bad_input;
mod browser;
mod cli;
mod db;
mod embodiments;
mod flood;
mod helpers;
mod history;
mod instances;
mod money;
mod money_model;
mod playground;
mod reliability;
mod scenarios;
mod schema_parity;
mod security;
mod support;
mod support_selftest;
mod web;
