//! The interactive shell's line editor: `rustyline` (emacs and vi keys, reverse search,
//! wide characters, terminal resizing) with tab completion of command names and znode paths,
//! and a history that survives across sessions in a file, as zkCli keeps its JLine history.
//!
//! Used only when stdin is a terminal; piped input is read line by line by the caller. The
//! history file is `$RZK_CLI_HISTORY`, else `~/.rzk_cli_history`; a file that cannot be read
//! or written costs the saved history, never the session.

use std::path::PathBuf;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Context, Helper, Highlighter, Hinter, Validator};

use rzk::client::Client;

/// What reading a line produced.
pub enum ReadLine {
    /// A line (without the newline).
    Line(String),
    /// Ctrl-C: the line was abandoned.
    Interrupted,
    /// Ctrl-D on an empty line, or end of input.
    Eof,
}

/// Completes the last word of the line before the cursor: whole-word candidates.
pub type CompleteFn = fn(Option<&Client>, &str) -> Vec<String>;

/// rustyline's view of the shell: completion needs the session to list children.
#[derive(Helper, Hinter, Highlighter, Validator)]
struct ShellHelper {
    client: Option<Client>,
    complete: CompleteFn,
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.rfind(' ').map(|i| i + 1).unwrap_or(0);
        Ok((start, (self.complete)(self.client.as_ref(), before)))
    }
}

/// The editor and its history file.
pub struct Editor {
    inner: rustyline::Editor<ShellHelper, DefaultHistory>,
    history_file: Option<PathBuf>,
}

impl Editor {
    /// An editor on the terminal, with the saved history loaded; `None` if the terminal
    /// cannot be used.
    pub fn new(complete: CompleteFn) -> Option<Editor> {
        // Like JLine: Tab completes the longest common prefix, a second Tab lists the rest.
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .auto_add_history(false)
            .max_history_size(1000)
            .ok()?
            .build();
        let mut inner = rustyline::Editor::with_config(config).ok()?;
        inner.set_helper(Some(ShellHelper { client: None, complete }));
        let history_file = history_file();
        if let Some(path) = &history_file {
            // A missing file is the first session.
            let _ = inner.load_history(path);
        }
        Some(Editor { inner, history_file })
    }

    /// Reads one line with `prompt`; `client` is lent to the completer meanwhile.
    pub fn read_line(
        &mut self,
        prompt: &str,
        client: &mut Option<Client>,
    ) -> std::io::Result<ReadLine> {
        if let Some(h) = self.inner.helper_mut() {
            h.client = client.take();
        }
        let read = self.inner.readline(prompt);
        if let Some(h) = self.inner.helper_mut() {
            *client = h.client.take();
        }
        match read {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = self.inner.add_history_entry(line.as_str());
                    if let Some(path) = &self.history_file {
                        // Appended per line, so a killed shell keeps what it ran.
                        if let Err(e) = self.inner.append_history(path) {
                            log::debug!("cannot save history to {}: {e}", path.display());
                        }
                    }
                }
                Ok(ReadLine::Line(line))
            }
            Err(ReadlineError::Interrupted) => Ok(ReadLine::Interrupted),
            Err(ReadlineError::Eof) => Ok(ReadLine::Eof),
            Err(ReadlineError::Io(e)) => Err(e),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }
}

/// `$RZK_CLI_HISTORY`, else `~/.rzk_cli_history`.
fn history_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RZK_CLI_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".rzk_cli_history"))
}
