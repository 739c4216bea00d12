//! One integration binary: the real service against a Bot API fake (HTTP on loopback) and an
//! SMTP sink (SMTP on loopback).

mod bad_input;
mod browser;
mod cli;
mod db;
mod flood;
mod helpers;
mod instances;
mod money_model;
mod money;
mod playground;
mod reliability;
mod scenarios;
mod security;
mod schema_parity;
mod support;
mod support_selftest;
mod web;
