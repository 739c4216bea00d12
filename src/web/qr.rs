//! QR codes as inline SVG, for people who read a group page on a computer and buy on their
//! phone. Pure markup: no image files, no image libraries.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// An `<svg>` element (no XML prolog) drawing `data` as a QR code, labelled for screen
/// readers; `None` if the data does not fit in a QR code.
pub fn svg(data: &str, label: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data, EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color>()
        .module_dimensions(1, 1)
        .quiet_zone(true)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    let start = image.find("<svg ")?;
    let label = crate::replies::esc(label);
    Some(image[start..].replacen(
        "<svg ",
        &format!(r#"<svg class="qr" role="img" aria-label="{label}" "#),
        1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inline_svg_element_with_a_label() {
        let s = svg(
            "https://t.me/groupbuy_bot?start=7KQ2XM9PD4HB6TRWZC",
            "QR \"code\"",
        )
        .expect("fits");
        assert!(s.starts_with(r#"<svg class="qr" role="img" aria-label="QR &quot;code&quot;" "#));
        assert!(s.ends_with("</svg>"));
        assert!(s.contains("viewBox=\"0 0 "));
        assert!(!s.contains("<?xml"));
    }

    #[test]
    fn too_much_data_is_none() {
        assert_eq!(svg(&"x".repeat(5_000), "too long"), None);
    }
}
