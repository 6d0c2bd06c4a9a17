//! Test documents made on the spot: a real baseline JPEG, a PDF of any number of pages,
//! and the JSON input of `ocr.expense_receipt` wrapping a file.

use super::*;

/// The JSON input of `ocr.expense_receipt` for a file: `{"file_name", "content_base64"}`.
pub fn receipt_input(file_name: &str, bytes: &[u8]) -> Value {
    json!({
        "file_name": file_name,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes)
    })
}

/// A PDF with `pages` blank A4 pages, in the classic uncompressed layout.
pub fn sample_pdf(pages: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |out: &mut Vec<u8>, text: String| {
        offsets.push(out.len());
        out.extend_from_slice(text.as_bytes());
    };
    object(
        &mut out,
        "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n".into(),
    );
    let kids: Vec<String> = (0..pages).map(|n| format!("{} 0 R", n + 3)).collect();
    object(
        &mut out,
        format!(
            "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {pages} >>\nendobj\n",
            kids.join(" ")
        ),
    );
    for n in 0..pages {
        object(
            &mut out,
            format!(
                "{} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>\nendobj\n",
                n + 3
            ),
        );
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1);
    for o in &offsets {
        table.push_str(&format!("{o:010} 00000 n \n"));
    }
    out.extend_from_slice(table.as_bytes());
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            offsets.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A baseline JPEG (grayscale, quality 50, the standard tables of ITU-T T.81 Annex K) of
/// `width` × `height` pixels showing a receipt: white paper with dark lines of "text".
pub fn sample_jpeg(width: u16, height: u16) -> Vec<u8> {
    let w = usize::from(width.max(1));
    let pixel = |x: usize, y: usize| -> u8 {
        let line = y % 12;
        let margin = x > w / 10 && x < w - w / 10;
        let ink = line < 5 && margin && !(x / 3 + y / 12).is_multiple_of(4);
        if ink {
            30
        } else {
            235
        }
    };
    jpeg::encode_gray(width.max(1), height.max(1), pixel)
}

/// A small baseline JPEG encoder, for test documents only.
pub(super) mod jpeg {
    /// Luminance quantisation table of Annex K.1 (quality 50), natural order.
    const QUANT: [u8; 64] = [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
        56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
        104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ];

    /// Natural index of each zig-zag position.
    const ZIGZAG: [usize; 64] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
        20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];

    /// Luminance DC Huffman table of Annex K.3: code counts per length, then symbols.
    const DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    /// Luminance AC Huffman table of Annex K.3.
    const AC_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
    pub(in crate::mindee) const AC_VALUES: [u8; 162] = [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
        0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
        0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
        0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
        0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ];

    /// Code and length of each symbol (Annex C).
    fn codes(bits: &[u8; 16], values: &[u8]) -> [(u16, u8); 256] {
        let mut table = [(0u16, 0u8); 256];
        let mut code: u16 = 0;
        let mut k = 0;
        for (len, count) in bits.iter().enumerate() {
            for _ in 0..*count {
                table[usize::from(values[k])] = (code, len as u8 + 1);
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        table
    }

    struct BitWriter {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }

    impl BitWriter {
        fn put(&mut self, bits: u16, len: u8) {
            for i in (0..len).rev() {
                self.acc = (self.acc << 1) | u32::from((bits >> i) & 1);
                self.n += 1;
                if self.n == 8 {
                    let byte = self.acc as u8;
                    self.out.push(byte);
                    if byte == 0xFF {
                        // Byte stuffing: 0xFF in entropy-coded data is followed by 0x00.
                        self.out.push(0);
                    }
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }

        /// Pads the last byte with 1 bits, as T.81 F.1.2.3 asks.
        fn finish(mut self) -> Vec<u8> {
            while self.n != 0 {
                self.put(1, 1);
            }
            self.out
        }
    }

    /// Category (bit length) and the bits of a coefficient (F.1.2.1).
    fn magnitude(v: i32) -> (u8, u16) {
        let a = v.unsigned_abs();
        let size = (32 - a.leading_zeros()) as u8;
        let bits = if v < 0 { v - 1 } else { v };
        (size, (bits as u32 & ((1u32 << size) - 1)) as u16)
    }

    fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    }

    /// Encodes a grayscale image given by `pixel(x, y)`.
    pub fn encode_gray(width: u16, height: u16, pixel: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        let (w, h) = (usize::from(width), usize::from(height));
        let mut out = vec![0xFF, 0xD8];
        segment(&mut out, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        let mut dqt = vec![0u8];
        dqt.extend(ZIGZAG.iter().map(|&i| QUANT[i]));
        segment(&mut out, 0xDB, &dqt);
        let mut sof = vec![8];
        sof.extend_from_slice(&height.to_be_bytes());
        sof.extend_from_slice(&width.to_be_bytes());
        sof.extend_from_slice(&[1, 1, 0x11, 0]);
        segment(&mut out, 0xC0, &sof);
        for (class, bits, values) in [
            (0x00u8, &DC_BITS, &DC_VALUES[..]),
            (0x10, &AC_BITS, &AC_VALUES[..]),
        ] {
            let mut dht = vec![class];
            dht.extend_from_slice(bits);
            dht.extend_from_slice(values);
            segment(&mut out, 0xC4, &dht);
        }
        segment(&mut out, 0xDA, &[1, 1, 0x00, 0, 63, 0]);

        let dc_codes = codes(&DC_BITS, &DC_VALUES);
        let ac_codes = codes(&AC_BITS, &AC_VALUES);
        let mut writer = BitWriter {
            out: Vec::new(),
            acc: 0,
            n: 0,
        };
        let mut previous_dc = 0;
        for by in (0..h).step_by(8) {
            for bx in (0..w).step_by(8) {
                // Level-shifted samples, edges replicated past the image.
                let mut block = [0f64; 64];
                for (i, s) in block.iter_mut().enumerate() {
                    let x = (bx + i % 8).min(w - 1);
                    let y = (by + i / 8).min(h - 1);
                    *s = f64::from(pixel(x, y)) - 128.0;
                }
                let mut coefficients = [0i32; 64];
                for v in 0..8 {
                    for u in 0..8 {
                        let mut sum = 0.0;
                        for y in 0..8 {
                            for x in 0..8 {
                                sum += block[y * 8 + x]
                                    * (((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI)
                                        / 16.0)
                                        .cos()
                                    * (((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI)
                                        / 16.0)
                                        .cos();
                            }
                        }
                        let cu = if u == 0 {
                            std::f64::consts::FRAC_1_SQRT_2
                        } else {
                            1.0
                        };
                        let cv = if v == 0 {
                            std::f64::consts::FRAC_1_SQRT_2
                        } else {
                            1.0
                        };
                        let f = 0.25 * cu * cv * sum;
                        coefficients[v * 8 + u] = (f / f64::from(QUANT[v * 8 + u])).round() as i32;
                    }
                }
                let dc = coefficients[0];
                let (size, bits) = magnitude(dc - previous_dc);
                previous_dc = dc;
                let (code, len) = dc_codes[usize::from(size)];
                writer.put(code, len);
                writer.put(bits, size);
                let mut run = 0;
                for &natural in &ZIGZAG[1..] {
                    let c = coefficients[natural];
                    if c == 0 {
                        run += 1;
                        continue;
                    }
                    while run > 15 {
                        let (code, len) = ac_codes[0xF0];
                        writer.put(code, len);
                        run -= 16;
                    }
                    let (size, bits) = magnitude(c);
                    let (code, len) = ac_codes[usize::from((run << 4) as u8 | size)];
                    writer.put(code, len);
                    writer.put(bits, size);
                    run = 0;
                }
                if run > 0 {
                    let (code, len) = ac_codes[0x00];
                    writer.put(code, len);
                }
            }
        }
        out.extend(writer.finish());
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }
}
