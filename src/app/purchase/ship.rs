//! Shipping (claim 5): the request stored with the purchase and emailed to fulfilment.

use super::checkout::Address;
use super::record::Arrival;
use crate::app::{AppResult, queue_email};
use crate::domain::PurchaseId;
use crate::mail::render::ShippingRequest;
use crate::store::{Conn, purchases};

/// The shipping request: stored, and emailed to fulfilment (claim 5).
pub(super) async fn ship(
    conn: &mut Conn,
    a: &Arrival<'_>,
    purchase_id: PurchaseId,
    product: &str,
) -> AppResult<()> {
    let (ctx, pay) = (a.ctx, a.pay);
    let region = pay.address.as_ref().and_then(Address::region);
    let recipient = pay
        .recipient
        .clone()
        .unwrap_or_else(|| a.person.first_name.clone());
    let address = pay.address.as_ref().map(Address::lines).unwrap_or_else(|| {
        "(digital product paid in Telegram Stars: no address; deliver it to the buyer in Telegram)".into()
    });
    let region_text = region
        .as_ref()
        .map_or_else(|| "unknown".into(), |r| r.to_string());
    purchases::insert_shipping_request(
        conn,
        purchase_id,
        &recipient,
        &address,
        region.as_ref(),
        a.now,
    )
    .await?;
    let mail = ShippingRequest {
        order: format!("GB-{purchase_id}"),
        product: product.to_string(),
        sku: a.p.sku.to_string(),
        paid: a.paid_text(),
        key: a.group.key.to_string(),
        recipient,
        address,
        region: region_text,
    }
    .render()?;
    let to = ctx.config.fulfilment_email.clone();
    queue_email(conn, a.now, format!("ship:{purchase_id}"), &to, mail).await?;
    Ok(())
}
