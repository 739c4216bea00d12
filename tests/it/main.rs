//! One integration binary: the real service against a Bot API fake (HTTP on loopback) and an
//! SMTP sink (SMTP on loopback).

mod bad_input;
mod cli;
mod browser;
mod db;
mod helpers;
mod instances;
mod reliability;
mod scenarios;
mod schema_parity;
mod support;
mod support_selftest;
mod web;
