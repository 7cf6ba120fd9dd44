import QRCode from "qrcode";

/**
 * QR codes of `otpauth://` URIs with the `qrcode` package (node-qrcode), the
 * npm registry's most used QR encoder; it renders SVG for the page and block
 * characters for terminals. Error correction M (15 %) keeps a 160-bit secret's
 * URI at a size phones read easily from a screen.
 */
export function otpauthQrSvgDataUrl(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: "svg", errorCorrectionLevel: "M", margin: 2 }).then(
    (svg) => `data:image/svg+xml;base64,${Buffer.from(svg, "utf8").toString("base64")}`,
  );
}

/** The QR code as text: two rows per line (half blocks), for a terminal. */
export function otpauthQrText(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: "terminal", small: true, errorCorrectionLevel: "M" });
}
