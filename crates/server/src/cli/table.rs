//! Plain-text output for people: column-aligned tables and aligned "label value" listings.

use std::fmt;

/// A table whose columns are padded to their widest cell and separated by two spaces.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells print empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<Vec<String>> = std::iter::once(&self.headers)
            .chain(&self.rows)
            .map(|row| {
                (0..self.headers.len())
                    .map(|i| row.get(i).map_or_else(String::new, |c| printable(c)))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| lines.iter().map(|l| width(&l[i])).max().unwrap_or(0))
            .collect();
        for line in &lines {
            let mut out = String::new();
            for (cell, w) in line.iter().zip(&widths) {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', w - width(cell) + 2));
            }
            writeln!(f, "{}", out.trim_end())?;
        }
        Ok(())
    }
}

/// Renders `label  value` lines with the values aligned, for showing one object.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(l, _)| width(l)).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(label, value)| {
            let line = format!("{label:<w$}  {}", printable(value));
            format!("{}\n", line.trim_end())
        })
        .collect()
}

/// Replaces control characters, so a name stored by someone else cannot break the layout or send
/// escape sequences to the terminal.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_trimmed() {
        let mut t = Table::new(&["ID", "NAME", "STATUS"]);
        t.row(vec!["key_1".into(), "a long name".into(), "active".into()]);
        t.row(vec!["key_22".into(), "x".into(), "".into()]);
        assert_eq!(
            t.to_string(),
            "ID      NAME         STATUS\n\
             key_1   a long name  active\n\
             key_22  x\n"
        );
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let mut t = Table::new(&["NAME", "N"]);
        t.row(vec!["clé".into(), "1".into()]);
        assert_eq!(t.to_string(), "NAME  N\nclé   1\n");
    }

    #[test]
    fn short_rows_are_padded_and_control_characters_replaced() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["x\u{1b}[31m\ny".into()]);
        assert!(!t.is_empty());
        assert_eq!(t.to_string(), "A         B\nx?[31m?y\n");
    }

    #[test]
    fn fields_align_values() {
        assert_eq!(
            fields(&[
                ("ID", "key_1".into()),
                ("Last used", "never".into()),
                ("Empty", String::new())
            ]),
            "ID         key_1\nLast used  never\nEmpty\n"
        );
    }
}
