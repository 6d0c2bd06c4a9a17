//! Tesseract's TSV output, as lines of words with their confidence.
//!
//! Tesseract prints one row per page, block, paragraph, line and word (`level` 1 to 5) with
//! the box and, for words, a confidence from 0 to 100. Only the words matter here; they are
//! grouped back into the lines Tesseract found (page, block, paragraph, line numbers), in
//! reading order. Confidences become fractions (0 to 1), the unit of [`ExpenseReceipt`].

use passerelle_plugin_api::prelude::*;

/// One recognised word.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    /// 0 to 1.
    pub confidence: f64,
    pub left: i64,
    pub top: i64,
    pub width: i64,
    pub height: i64,
}

/// One line of text, its words left to right.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub page: u32,
    pub words: Vec<Word>,
}

impl Line {
    /// The line's text, words separated by one space.
    pub fn text(&self) -> String {
        self.words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the engine read from a document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Pages seen (a multi-page TIFF has several).
    pub pages: u32,
    pub lines: Vec<Line>,
}

impl Reading {
    /// The whole text, one line per line.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(Line::text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Parses the TSV printed by `tesseract … tsv`.
pub fn parse(tsv: &str) -> Result<Reading, PluginError> {
    let mut rows = tsv.lines();
    let header = rows.next().unwrap_or_default();
    let columns: Vec<&str> = header.split('\t').collect();
    let col = |name: &str| columns.iter().position(|c| c.trim() == name);
    let (
        Some(level),
        Some(page),
        Some(block),
        Some(par),
        Some(line),
        Some(left),
        Some(top),
        Some(width),
        Some(height),
        Some(conf),
        Some(text),
    ) = (
        col("level"),
        col("page_num"),
        col("block_num"),
        col("par_num"),
        col("line_num"),
        col("left"),
        col("top"),
        col("width"),
        col("height"),
        col("conf"),
        col("text"),
    )
    else {
        return Err(PluginError::new(
            ErrorKind::Upstream,
            format!(
                "Tesseract's output is not the expected TSV (header {:?}): check that the \
                 engine is Tesseract 4 or newer",
                header.chars().take(120).collect::<String>()
            ),
        ));
    };
    let mut reading = Reading::default();
    let mut current: Option<(u32, u32, u32, u32)> = None;
    for row in rows {
        let cells: Vec<&str> = row.split('\t').collect();
        let int = |i: usize| cells.get(i).and_then(|c| c.trim().parse::<i64>().ok());
        let Some(page_num) = int(page) else {
            continue;
        };
        let page_num = u32::try_from(page_num).unwrap_or(0);
        reading.pages = reading.pages.max(page_num);
        if int(level) != Some(5) {
            continue;
        }
        let word_text = cells.get(text).map(|t| t.trim()).unwrap_or_default();
        if word_text.is_empty() {
            continue;
        }
        let confidence = cells
            .get(conf)
            .and_then(|c| c.trim().parse::<f64>().ok())
            .filter(|c| c.is_finite() && *c >= 0.0)
            .map_or(0.0, |c| (c / 100.0).clamp(0.0, 1.0));
        let key = (
            page_num,
            u32::try_from(int(block).unwrap_or(0)).unwrap_or(0),
            u32::try_from(int(par).unwrap_or(0)).unwrap_or(0),
            u32::try_from(int(line).unwrap_or(0)).unwrap_or(0),
        );
        let word = Word {
            text: word_text.to_owned(),
            confidence,
            left: int(left).unwrap_or(0),
            top: int(top).unwrap_or(0),
            width: int(width).unwrap_or(0),
            height: int(height).unwrap_or(0),
        };
        match reading.lines.last_mut() {
            Some(last) if current == Some(key) => last.words.push(word),
            _ => {
                reading.lines.push(Line {
                    page: page_num,
                    words: vec![word],
                });
                current = Some(key);
            }
        }
    }
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t826\t922\t-1\t
2\t1\t1\t0\t0\t0\t42\t30\t392\t391\t-1\t
4\t1\t1\t1\t1\t0\t53\t30\t381\t31\t-1\t
5\t1\t1\t1\t1\t1\t53\t30\t200\t26\t91.369087\tBOULANGERIE
5\t1\t1\t1\t1\t2\t266\t35\t38\t22\t95.345062\tDU
5\t1\t1\t1\t2\t1\t53\t63\t30\t22\t95.762360\t12
5\t1\t1\t1\t2\t2\t97\t69\t44\t17\t-1\t 
5\t2\t1\t1\t1\t1\t50\t10\t30\t22\t40\tPage2
";

    #[test]
    fn words_are_grouped_into_lines_with_fractional_confidences() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.pages, 2);
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.lines[0].text(), "BOULANGERIE DU");
        assert!((r.lines[0].words[0].confidence - 0.91369087).abs() < 1e-9);
        assert_eq!(r.lines[0].words[1].left, 266);
        assert_eq!(r.lines[1].text(), "12");
        assert_eq!(r.lines[2].page, 2);
        assert_eq!(r.text(), "BOULANGERIE DU\n12\nPage2");
    }

    #[test]
    fn output_that_is_not_tsv_is_an_upstream_error() {
        let e = parse("BOULANGERIE DU MARCHE\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Upstream);
        assert!(parse("").is_err());
    }
}
