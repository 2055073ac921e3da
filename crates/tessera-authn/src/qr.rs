//! QR codes as SVG, for TOTP enrolment pages (no image crates, no external assets).

/// An SVG image of `text` as a QR code, or `None` if the text is too long for one.
pub fn svg(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_an_svg() {
        let image = super::svg("otpauth://totp/Tessera:adele?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(image.starts_with("<?xml") || image.starts_with("<svg"));
        assert!(image.contains("<svg") && image.contains("</svg>"));
        assert!(super::svg(&"x".repeat(5000)).is_none());
    }
}
