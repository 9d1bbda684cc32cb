//! `latchkey keys import FILE`: keys issued elsewhere (SPEC §12.3), from a CSV file or JSON
//! Lines, sent to `POST /v1/keys/import` in batches with a progress bar, then a summary of what
//! failed and why, by line of the file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use latchkey_client::Client;
use latchkey_core::{Environment, KeyType, Permission, Secret};
use latchkey_proto::keys::{ImportKey, ImportKeys};
use serde::Serialize;

/// What the server takes in one call.
use crate::service::keys::MAX_IMPORT;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV with a header row (columns: key or sha256, name, owner_id, and optionally
    /// workspace_id, environment, type, permissions (space-separated), expires_at, metadata
    /// (JSON)), or JSON Lines with one object per line in the API's shape
    pub file: PathBuf,
    /// The file's format (default: from its extension, .csv or .jsonl/.ndjson)
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Keys per request (1 to 1000)
    #[arg(long, default_value_t = MAX_IMPORT as u16, value_parser = clap::value_parser!(u16).range(1..=MAX_IMPORT as i64))]
    pub batch_size: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

/// A key read from the file, with the line it came from (from 1, counting the header).
type Entry = (usize, ImportKey);

/// A line that was not imported, and why.
#[derive(Debug, Serialize)]
struct Failure {
    line: usize,
    message: String,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    imported: usize,
    failed: Vec<Failure>,
}

pub async fn run(client: &Client, json: bool, args: ImportArgs) -> Result<()> {
    let format = match args.format {
        Some(f) => f,
        None => format_of(&args.file)?,
    };
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let (entries, mut failed) = match format {
        Format::Csv => read_csv(file)?,
        Format::Jsonl => read_jsonl(BufReader::new(file))?,
    };
    let total = entries.len() + failed.len();
    let bar = if json {
        ProgressBar::hidden()
    } else {
        // Drawn on stderr, and only on a terminal: a script's output stays clean.
        ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} keys  {elapsed} ({eta} left)")
                .expect("a valid template"),
        )
    };
    bar.inc(failed.len() as u64);
    let mut summary = Summary::default();
    for batch in entries.chunks(usize::from(args.batch_size)) {
        let body = ImportKeys {
            keys: batch.iter().map(|(_, k)| k.clone()).collect(),
        };
        let result = client.keys().import(&body).await?;
        summary.imported += result.imported.len();
        failed.extend(result.failed.into_iter().map(|f| Failure {
            line: batch.get(f.index).map_or(0, |(line, _)| *line),
            message: f.message,
        }));
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    failed.sort_by_key(|f| f.line);
    summary.failed = failed;
    print_summary(json, &summary, total)?;
    if summary.failed.is_empty() {
        Ok(())
    } else {
        bail!("{} of {total} keys were not imported", summary.failed.len())
    }
}

fn format_of(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => Ok(Format::Csv),
        Some(e) if e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson") => {
            Ok(Format::Jsonl)
        }
        _ => bail!(
            "cannot tell the format of {}: pass --format csv or --format jsonl",
            path.display()
        ),
    }
}

fn print_summary(json: bool, summary: &Summary, total: usize) -> Result<()> {
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, summary)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "Imported {} of {total} keys.", summary.imported)?;
    if !summary.failed.is_empty() {
        writeln!(out, "Not imported ({}):", summary.failed.len())?;
        for f in &summary.failed {
            writeln!(out, "  line {}: {}", f.line, f.message)?;
        }
    }
    Ok(())
}

fn read_jsonl(reader: impl BufRead) -> Result<(Vec<Entry>, Vec<Failure>)> {
    let (mut entries, mut failed) = (vec![], vec![]);
    for (i, line) in reader.lines().enumerate() {
        let line = line.context("cannot read the file")?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ImportKey>(&line) {
            Ok(k) => entries.push((i + 1, k)),
            // serde's message names the field and column, never the value.
            Err(e) => failed.push(Failure {
                line: i + 1,
                message: format!("not a key to import: {e}"),
            }),
        }
    }
    Ok((entries, failed))
}

fn read_csv(file: File) -> Result<(Vec<Entry>, Vec<Failure>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = reader
        .headers()
        .context("cannot read the header row")?
        .clone();
    let known = [
        "key",
        "sha256",
        "name",
        "owner_id",
        "workspace_id",
        "environment",
        "type",
        "permissions",
        "expires_at",
        "metadata",
    ];
    if let Some(unknown) = headers.iter().find(|h| !known.contains(h)) {
        bail!(
            "unknown column {unknown:?}; the columns are {}",
            known.join(", ")
        );
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let columns: Vec<Option<usize>> = known.iter().map(|n| column(n)).collect();
    let (mut entries, mut failed) = (vec![], vec![]);
    for record in reader.records() {
        let record = record.context("cannot read the file")?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cell = |i: usize| {
            columns[i]
                .and_then(|c| record.get(c))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        match from_cells(cell) {
            Ok(k) => entries.push((line, k)),
            Err(message) => failed.push(Failure { line, message }),
        }
    }
    Ok((entries, failed))
}

/// One CSV row, by the columns of `read_csv`'s `known`, in that order.
fn from_cells(cell: impl Fn(usize) -> Option<String>) -> Result<ImportKey, String> {
    let environment = match cell(5) {
        None => None,
        Some(e) => Some(
            e.parse::<Environment>()
                .map_err(|()| format!("environment: {e:?} is not test or live"))?,
        ),
    };
    let key_type = match cell(6) {
        None => None,
        Some(t) => Some(
            t.parse::<KeyType>()
                .map_err(|()| format!("type: {t:?} is not secret or publishable"))?,
        ),
    };
    let permissions = match cell(7) {
        None => None,
        Some(p) => Some(
            p.split_whitespace()
                .map(|s| {
                    s.parse::<Permission>()
                        .map_err(|_| format!("permissions: {s:?} is not a permission"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let expires_at = match cell(8) {
        None => None,
        Some(t) => Some(
            t.parse()
                .map_err(|_| format!("expires_at: {t:?} is not an RFC 3339 time"))?,
        ),
    };
    let metadata = match cell(9) {
        None => None,
        Some(m) => Some(serde_json::from_str(&m).map_err(|e| format!("metadata: not JSON ({e})"))?),
    };
    Ok(ImportKey {
        key: cell(0).map(Secret::new),
        sha256: cell(1),
        name: cell(2).ok_or("name: missing")?,
        owner_id: cell(3).ok_or("owner_id: missing")?,
        workspace_id: cell(4),
        environment,
        key_type,
        permissions,
        expires_at,
        metadata,
    })
}
