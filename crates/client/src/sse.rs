//! Reading a `text/event-stream` (the HTML Living Standard's "server-sent events" format):
//! lines of `field: value`, events ended by a blank line, comments starting with `:`.

/// One event as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Turns chunks of bytes into events; chunks may split lines (and UTF-8 sequences) anywhere.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    current: SseEvent,
    has_data: bool,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if self.has_data || !self.current.event.is_empty() {
                    out.push(std::mem::take(&mut self.current));
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue; // a comment: the keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (&*line, ""),
            };
            match field {
                "event" => self.current.event = value.to_owned(),
                "id" => self.current.id = Some(value.to_owned()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments_are_read() {
        let mut p = SseParser::default();
        let stream = b": alive\n\nevent: change\nid: 42\ndata: {\"seq\":1}\n\nevent: ready\r\nid: 43\r\ndata: {}\r\n\r\n";
        let mut events = Vec::new();
        for chunk in stream.chunks(5) {
            events.extend(p.feed(chunk));
        }
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "change".into(),
                    id: Some("42".into()),
                    data: "{\"seq\":1}".into()
                },
                SseEvent {
                    event: "ready".into(),
                    id: Some("43".into()),
                    data: "{}".into()
                },
            ]
        );
    }
}
