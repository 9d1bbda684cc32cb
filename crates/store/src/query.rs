//! A small builder for list queries with optional filters and keyset pagination, numbering
//! placeholders as `$n` so the same text runs on both backends.

use sqlx::any::AnyArguments;
use sqlx::Arguments;

pub(crate) struct ListQuery {
    sql: String,
    args: AnyArguments<'static>,
    n: usize,
    has_where: bool,
}

pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}
impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_owned())
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl ListQuery {
    pub fn new(select: &str) -> Self {
        Self {
            sql: select.to_owned(),
            args: AnyArguments::default(),
            n: 0,
            has_where: false,
        }
    }

    /// Adds `AND <cond>`, where each `?` in `cond` becomes the next placeholder bound to `arg`.
    pub fn and(&mut self, cond: &str, args: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.sql
            .push_str(if self.has_where { " AND " } else { " WHERE " });
        self.has_where = true;
        let mut args = args.into_iter();
        for (i, part) in cond.split('?').enumerate() {
            if i > 0 {
                self.n += 1;
                self.sql.push_str(&format!("${}", self.n));
                match args.next().expect("one argument per `?`") {
                    Arg::Text(s) => self.args.add(s).expect("encode"),
                    Arg::Int(v) => self.args.add(v).expect("encode"),
                }
            }
            self.sql.push_str(part);
        }
        self
    }

    pub fn and_if(&mut self, cond: &str, arg: Option<impl Into<Arg>>) -> &mut Self {
        if let Some(a) = arg {
            self.and(cond, [a.into()]);
        }
        self
    }

    /// The query as built, with `tail` (GROUP BY, ORDER BY) appended.
    pub fn finish(mut self, tail: &str) -> (String, AnyArguments<'static>) {
        self.sql.push_str(tail);
        (self.sql, self.args)
    }

    /// Newest first, keyset-paginated on the time-ordered id column `id_col`. Fetches one extra
    /// row to know whether another page exists.
    pub fn page(
        mut self,
        id_col: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> (String, AnyArguments<'static>) {
        if let Some(c) = cursor {
            self.and(&format!("{id_col} < ?"), [Arg::Text(c.to_owned())]);
        }
        self.sql
            .push_str(&format!(" ORDER BY {id_col} DESC LIMIT {}", limit + 1));
        (self.sql, self.args)
    }
}
