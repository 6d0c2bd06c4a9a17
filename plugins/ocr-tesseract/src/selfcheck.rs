//! The test routine's self-check image: a small receipt drawn by the plugin itself, so that
//! the check needs no file, no font on the machine and no image library.
//!
//! Glyphs are strokes (lines and elliptic arcs) drawn with anti-aliased pens, which the
//! engine's neural recogniser reads like printed text; blocky bitmap fonts would not do:
//! it takes their zeros for eights. Only the characters of [`LINES`] are drawn. The image
//! is a binary PGM (P5), which every Tesseract reads.

use std::f64::consts::PI;

/// What the image says, line by line. The test routine expects the engine to read these
/// values back: the total, the date and every digit.
pub const LINES: [&str; 3] = ["TOTAL TTC 42,50", "DATE 12/03/2026", "0123456789"];
/// The total printed on the image.
pub const TOTAL: f64 = 42.5;
/// The date printed on the image, as ISO 8601.
pub const DATE: &str = "2026-03-12";

/// Pixels per glyph unit (a capital is 10 units high).
const SCALE: f64 = 3.0;
/// Pen width, in glyph units.
const PEN: f64 = 1.5;
const MARGIN: f64 = 8.0;
const LINE_HEIGHT: f64 = 16.0;

type Stroke = Vec<(f64, f64)>;

/// Points of an elliptic arc from `a0` to `a1` degrees (0 = right, 90 = down).
fn arc(cx: f64, cy: f64, rx: f64, ry: f64, a0: f64, a1: f64) -> Stroke {
    let steps = 28;
    (0..=steps)
        .map(|i| {
            let a = (a0 + (a1 - a0) * f64::from(i) / f64::from(steps)) * PI / 180.0;
            (cx + rx * a.cos(), cy + ry * a.sin())
        })
        .collect()
}

fn chain(mut a: Stroke, b: &[(f64, f64)]) -> Stroke {
    a.extend_from_slice(b);
    a
}

/// The strokes and advance width of a glyph; `None` for a character not drawn.
fn glyph(c: char) -> Option<(Vec<Stroke>, f64)> {
    let g = match c {
        '0' => (vec![arc(3.0, 5.0, 2.5, 4.6, 0.0, 360.0)], 7.0),
        '1' => (vec![vec![(1.2, 2.2), (3.6, 0.0), (3.6, 10.0)]], 7.0),
        '2' => (
            vec![chain(
                arc(3.0, 2.8, 2.5, 2.6, 180.0, 390.0),
                &[(0.5, 10.0), (5.6, 10.0)],
            )],
            7.0,
        ),
        '3' => (
            vec![
                arc(3.0, 2.6, 2.3, 2.4, 160.0, 450.0),
                arc(3.0, 7.3, 2.6, 2.7, -90.0, 160.0),
            ],
            7.0,
        ),
        '4' => (
            vec![vec![(4.3, 10.0), (4.3, 0.0), (0.3, 7.0), (5.8, 7.0)]],
            7.0,
        ),
        '5' => (
            vec![chain(
                vec![(5.3, 0.0), (1.1, 0.0), (0.8, 4.5)],
                &arc(3.0, 6.9, 2.6, 3.0, -130.0, 150.0),
            )],
            7.0,
        ),
        '6' => (
            vec![
                arc(3.0, 7.0, 2.6, 2.9, 0.0, 360.0),
                vec![(4.8, 0.2), (3.2, 1.2), (1.3, 3.5), (0.4, 6.8)],
            ],
            7.0,
        ),
        '7' => (vec![vec![(0.4, 0.0), (5.6, 0.0), (2.0, 10.0)]], 7.0),
        '8' => (
            vec![
                arc(3.0, 2.5, 2.2, 2.4, 0.0, 360.0),
                arc(3.0, 7.4, 2.6, 2.6, 0.0, 360.0),
            ],
            7.0,
        ),
        '9' => (
            vec![
                arc(3.0, 3.0, 2.6, 2.9, 0.0, 360.0),
                vec![(5.6, 3.2), (4.7, 6.5), (2.8, 8.8), (1.2, 10.0)],
            ],
            7.0,
        ),
        'A' => (
            vec![
                vec![(0.0, 10.0), (3.0, 0.0), (6.0, 10.0)],
                vec![(1.1, 6.5), (4.9, 6.5)],
            ],
            7.5,
        ),
        'C' => (vec![arc(3.2, 5.0, 2.8, 4.9, -40.0, -320.0)], 7.5),
        'D' => (
            vec![chain(
                chain(
                    vec![(0.6, 0.0), (0.6, 10.0), (2.6, 10.0)],
                    &arc(2.6, 5.0, 3.0, 5.0, 90.0, -90.0),
                ),
                &[(0.6, 0.0)],
            )],
            7.5,
        ),
        'E' => (
            vec![
                vec![(5.4, 0.0), (0.6, 0.0), (0.6, 10.0), (5.4, 10.0)],
                vec![(0.6, 5.0), (4.6, 5.0)],
            ],
            7.0,
        ),
        'L' => (vec![vec![(0.6, 0.0), (0.6, 10.0), (5.6, 10.0)]], 7.0),
        'O' => (vec![arc(3.0, 5.0, 2.9, 4.9, 0.0, 360.0)], 7.5),
        'T' => (
            vec![vec![(0.0, 0.0), (6.0, 0.0)], vec![(3.0, 0.0), (3.0, 10.0)]],
            7.0,
        ),
        ',' => (vec![vec![(1.0, 9.2), (1.0, 10.0), (0.2, 11.6)]], 3.0),
        '/' => (vec![vec![(0.6, 10.5), (5.0, -0.5)]], 6.5),
        ' ' => (Vec::new(), 5.0),
        _ => return None,
    };
    Some(g)
}

fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

/// The lines drawn black on white, as a binary PGM file.
pub fn image(lines: &[&str]) -> Vec<u8> {
    let widths: Vec<f64> = lines
        .iter()
        .map(|l| l.chars().filter_map(glyph).map(|(_, w)| w).sum())
        .collect();
    let width_units = MARGIN * 2.0 + widths.iter().copied().fold(0.0, f64::max);
    let height_units = MARGIN * 2.0 + LINE_HEIGHT * lines.len() as f64;
    let (w, h) = (
        (width_units * SCALE).ceil() as usize,
        (height_units * SCALE).ceil() as usize,
    );
    let mut ink = vec![0.0_f64; w * h];
    for (row, line) in lines.iter().enumerate() {
        let mut x = MARGIN;
        let y = MARGIN + LINE_HEIGHT * row as f64;
        for c in line.chars() {
            let Some((strokes, advance)) = glyph(c) else {
                continue;
            };
            let segments: Vec<((f64, f64), (f64, f64))> = strokes
                .iter()
                .flat_map(|s| s.windows(2).map(|p| (p[0], p[1])))
                .map(|(a, b)| ((a.0 + x, a.1 + y), (b.0 + x, b.1 + y)))
                .collect();
            // Only the pixels around the glyph's box are measured.
            let px0 = ((x - 2.0) * SCALE).max(0.0) as usize;
            let px1 = (((x + advance + 2.0) * SCALE) as usize).min(w);
            let py0 = ((y - 2.0) * SCALE).max(0.0) as usize;
            let py1 = (((y + 13.0) * SCALE) as usize).min(h);
            for py in py0..py1 {
                for px in px0..px1 {
                    let p = ((px as f64 + 0.5) / SCALE, (py as f64 + 0.5) / SCALE);
                    let d = segments
                        .iter()
                        .map(|(a, b)| segment_distance(p, *a, *b))
                        .fold(f64::INFINITY, f64::min)
                        * SCALE;
                    let cover = (PEN * SCALE / 2.0 - d + 0.5).clamp(0.0, 1.0);
                    let cell = &mut ink[py * w + px];
                    *cell = cell.max(cover);
                }
            }
            x += advance;
        }
    }
    let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
    pgm.extend(ink.iter().map(|i| (255.0 * (1.0 - i)).round() as u8));
    pgm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_of_the_check_is_drawn() {
        for line in LINES {
            for c in line.chars() {
                assert!(glyph(c).is_some(), "{c:?} has no glyph");
            }
        }
    }

    #[test]
    fn the_image_is_a_pgm_with_ink_on_white() {
        let pgm = image(&LINES);
        let header_end = pgm
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(2)
            .unwrap()
            .0;
        let header = std::str::from_utf8(&pgm[..header_end]).unwrap();
        let dims: Vec<usize> = header
            .split_whitespace()
            .skip(1)
            .take(2)
            .map(|n| n.parse().unwrap())
            .collect();
        let pixels = &pgm[header_end + 1..];
        assert_eq!(pixels.len(), dims[0] * dims[1]);
        let black = pixels.iter().filter(|p| **p < 64).count();
        let white = pixels.iter().filter(|p| **p == 255).count();
        assert!(black > pixels.len() / 50, "too little ink: {black}");
        assert!(white > pixels.len() / 2, "too little paper: {white}");
    }
}
