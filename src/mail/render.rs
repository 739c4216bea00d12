//! The emails the service sends, rendered from `templates/email/` as text and HTML parts.
//! HTML templates autoescape; text templates do not need to.

use askama::Template;

/// An email ready to send: subject, plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The email that invites someone to a group, with a deep link to the bot.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub organiser: String,
    pub product: String,
    pub price: String,
    pub head_count: u32,
    pub best_rate: String,
    /// False for a product sold without a group discount (¶0146).
    pub discount: bool,
    /// An open head count (¶0144): no N to reach.
    pub open_count: bool,
    /// "2026-11-24 09:00 UTC", or how a group without expiry ends.
    pub expires: String,
    pub deep_link: String,
    pub page_url: String,
    pub key: String,
    /// The recipient's "don't email me again" page (its POST is the one-click unsubscribe).
    pub unsubscribe_url: String,
}

#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationText<'a> {
    organiser: &'a str,
    product: &'a str,
    price: &'a str,
    head_count: u32,
    best_rate: &'a str,
    discount: bool,
    open_count: bool,
    no_discount: &'a str,
    expires: &'a str,
    deep_link: &'a str,
    page_url: &'a str,
    key: &'a str,
    unsubscribe_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/invitation.html")]
struct InvitationHtml<'a> {
    organiser: &'a str,
    product: &'a str,
    price: &'a str,
    head_count: u32,
    best_rate: &'a str,
    discount: bool,
    open_count: bool,
    no_discount: &'a str,
    expires: &'a str,
    deep_link: &'a str,
    page_url: &'a str,
    key: &'a str,
    unsubscribe_url: &'a str,
}

impl Invitation {
    /// Fills the invitation's text and HTML templates.
    pub fn render(&self) -> Result<Rendered, askama::Error> {
        macro_rules! fill {
            ($t:ident) => {
                $t {
                    organiser: &self.organiser,
                    product: &self.product,
                    price: &self.price,
                    head_count: self.head_count,
                    best_rate: &self.best_rate,
                    discount: self.discount,
                    open_count: self.open_count,
                    no_discount: crate::replies::messages::NO_DISCOUNT,
                    expires: &self.expires,
                    deep_link: &self.deep_link,
                    page_url: &self.page_url,
                    key: &self.key,
                    unsubscribe_url: &self.unsubscribe_url,
                }
            };
        }
        Ok(Rendered {
            // `organiser` is a quoted name (replies::quoted_name): the words a Telegram user
            // chose, never presented as the sender.
            subject: format!(
                "Telegram user {} invites you to buy {} together",
                self.organiser, self.product
            ),
            text: fill!(InvitationText).render()?,
            html: fill!(InvitationHtml).render()?,
        })
    }
}

/// The email asking the fulfilment address to ship a paid order.
#[derive(Debug, Clone)]
pub struct ShippingRequest {
    pub order: String,
    pub product: String,
    pub sku: String,
    pub paid: String,
    pub key: String,
    pub recipient: String,
    pub address: String,
    pub region: String,
}

#[derive(Template)]
#[template(path = "email/shipping_request.txt")]
struct ShippingText<'a> {
    order: &'a str,
    product: &'a str,
    sku: &'a str,
    paid: &'a str,
    key: &'a str,
    recipient: &'a str,
    address: &'a str,
    region: &'a str,
}

#[derive(Template)]
#[template(path = "email/shipping_request.html")]
struct ShippingHtml<'a> {
    order: &'a str,
    product: &'a str,
    sku: &'a str,
    paid: &'a str,
    key: &'a str,
    recipient: &'a str,
    address: &'a str,
    region: &'a str,
}

impl ShippingRequest {
    /// Fills the shipping request's text and HTML templates.
    pub fn render(&self) -> Result<Rendered, askama::Error> {
        macro_rules! fill {
            ($t:ident) => {
                $t {
                    order: &self.order,
                    product: &self.product,
                    sku: &self.sku,
                    paid: &self.paid,
                    key: &self.key,
                    recipient: &self.recipient,
                    address: &self.address,
                    region: &self.region,
                }
            };
        }
        Ok(Rendered {
            subject: format!("Shipping request {}: {}", self.order, self.product),
            text: fill!(ShippingText).render()?,
            html: fill!(ShippingHtml).render()?,
        })
    }
}

/// The email telling a buyer what their group's settlement earned them.
#[derive(Debug, Clone)]
pub struct DiscountNotice {
    pub key: String,
    pub product: String,
    pub buyers: u32,
    pub head_count: u32,
    /// An open head count (¶0144): no N to show.
    pub open_count: bool,
    pub rate: String,
    pub points: i64,
    pub points_text: String,
    /// The extra of the region rate (¶0059), in minor units and for people.
    pub extra: i64,
    pub extra_text: String,
    pub bonus: i64,
    pub bonus_text: String,
    pub unit: String,
    pub reason: String,
    pub balance_text: String,
    pub receipt_url: String,
}

#[derive(Template)]
#[template(path = "email/discount_notice.txt")]
struct NoticeText<'a> {
    key: &'a str,
    product: &'a str,
    buyers: u32,
    head_count: u32,
    open_count: bool,
    rate: &'a str,
    points: i64,
    points_text: &'a str,
    extra: i64,
    extra_text: &'a str,
    bonus: i64,
    bonus_text: &'a str,
    unit: &'a str,
    reason: &'a str,
    balance_text: &'a str,
    receipt_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/discount_notice.html")]
struct NoticeHtml<'a> {
    key: &'a str,
    product: &'a str,
    buyers: u32,
    head_count: u32,
    open_count: bool,
    rate: &'a str,
    points: i64,
    points_text: &'a str,
    extra: i64,
    extra_text: &'a str,
    bonus: i64,
    bonus_text: &'a str,
    unit: &'a str,
    reason: &'a str,
    balance_text: &'a str,
    receipt_url: &'a str,
}

impl DiscountNotice {
    /// "2 of 3", or "2" for an open head count.
    pub fn buyers_text(&self) -> String {
        crate::replies::of_seats(self.buyers, self.head_count, self.open_count)
    }

    /// Fills the discount notice's text and HTML templates.
    pub fn render(&self) -> Result<Rendered, askama::Error> {
        macro_rules! fill {
            ($t:ident) => {
                $t {
                    key: &self.key,
                    product: &self.product,
                    buyers: self.buyers,
                    head_count: self.head_count,
                    open_count: self.open_count,
                    rate: &self.rate,
                    points: self.points,
                    points_text: &self.points_text,
                    extra: self.extra,
                    extra_text: &self.extra_text,
                    bonus: self.bonus,
                    bonus_text: &self.bonus_text,
                    unit: &self.unit,
                    reason: &self.reason,
                    balance_text: &self.balance_text,
                    receipt_url: &self.receipt_url,
                }
            };
        }
        let subject = if self.points > 0 {
            format!("{} points back for your {}", self.points_text, self.product)
        } else {
            format!("Your group purchase of {} has closed", self.product)
        };
        Ok(Rendered {
            subject,
            text: fill!(NoticeText).render()?,
            html: fill!(NoticeHtml).render()?,
        })
    }
}

/// To fulfilment: a payment goes back to its buyer (and its goods, if requested, must not ship).
#[derive(Debug, Clone)]
pub struct RefundDue {
    pub order: String,
    pub charge_id: String,
    pub amount: String,
    pub buyer: String,
    pub product: String,
    pub key: String,
    pub reason: String,
    /// A provider payment: the operator pays it out and closes it.
    pub to_pay_out: bool,
    /// A shipping request went out for this order.
    pub cancel_shipping: bool,
}

#[derive(Template)]
#[template(path = "email/refund_due.txt")]
struct RefundDueText<'a> {
    r: &'a RefundDue,
}

#[derive(Template)]
#[template(path = "email/refund_due.html")]
struct RefundDueHtml<'a> {
    r: &'a RefundDue,
}

impl RefundDue {
    /// Fills the email; its subject says "Refund due" while a provider payment awaits payout.
    pub fn render(&self) -> Result<Rendered, askama::Error> {
        let what = if self.to_pay_out {
            "Refund due"
        } else {
            "Refunded"
        };
        Ok(Rendered {
            subject: format!("{what} {}: {} ({})", self.order, self.amount, self.product),
            text: RefundDueText { r: self }.render()?,
            html: RefundDueHtml { r: self }.render()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_parts_escape_and_text_parts_do_not() {
        let inv = Invitation {
            organiser: "Bob <script>".into(),
            product: "Digital camera".into(),
            price: "34,800 JPY".into(),
            head_count: 3,
            best_rate: "10%".into(),
            discount: true,
            open_count: false,
            expires: "2026-11-24 09:00 UTC".into(),
            deep_link: "https://t.me/bot?start=K-I".into(),
            page_url: "http://x/g/K".into(),
            key: "K".into(),
            unsubscribe_url: "http://x/unsubscribe/T".into(),
        };
        let r = inv.render().expect("renders");
        assert!(
            r.text
                .contains("Don't email me again: http://x/unsubscribe/T")
        );
        assert!(r.html.contains("href=\"http://x/unsubscribe/T\""));
        assert!(
            r.html.contains("Bob &#60;script&#62;") || r.html.contains("Bob &lt;script&gt;"),
            "{}",
            r.html
        );
        assert!(r.text.contains("Bob <script>"));
        assert!(r.text.contains("https://t.me/bot?start=K-I"));
        assert!(r.subject.contains("Digital camera"));
    }
}
