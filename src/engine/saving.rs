//! One way to save a form, for profiles and events alike: check the names, find and read the
//! file, refuse a rename onto a taken name, parse it with `toml_edit`, apply the fields that
//! changed in place, write nothing when nothing changed, check that the result loads, write it
//! atomically, remove the old file of a rename, reload. What differs between the two (which
//! fields there are and how they land in the file, what "loads" means, secrets going to the
//! vault) is a [`FormSave`].

use std::path::PathBuf;

use super::editor::{EditError, Saved};
use super::Engine;
use crate::profile::{self, Diagnostic};

/// A file about to be edited.
pub(super) struct Located {
    /// Where the thing lives now (or would, when new).
    pub file: PathBuf,
    /// Its text now; empty for a new file.
    pub original: String,
    /// Where it is written: `file`, or the new name's file on a rename.
    pub target: PathBuf,
    pub renamed: bool,
}

/// What is particular to saving one kind of form.
pub(super) trait FormSave {
    /// `profile` or `event`, as names and messages say.
    const WHAT: &'static str;

    /// The name the form gives (the same as the one edited, or a new one: a rename).
    fn new_name(&self) -> &str;

    /// Finds the file of `path_name` (read, or empty when new) and where it goes, refusing a
    /// rename onto a name that is taken.
    fn locate(&mut self, engine: &Engine, path_name: &str) -> Result<Located, EditError>;

    /// Writes into `doc` what the form changed.
    fn apply(
        &mut self,
        engine: &Engine,
        doc: &mut toml_edit::DocumentMut,
        located: &Located,
    ) -> Result<(), EditError>;

    /// Whether `text`, written at `located.target`, loads without errors.
    fn check(&self, engine: &Engine, located: &Located, text: &str) -> Result<(), EditError>;

    /// What has to happen before the file is written (a profile's new secrets go to the vault).
    fn before_write(&self, _engine: &Engine) -> Result<(), EditError> {
        Ok(())
    }
}

/// A file's text, or empty when there is no such file yet.
pub(super) fn read_or_new(file: &std::path::Path) -> Result<String, EditError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(EditError::Io(format!("{}: {e}", file.display()))),
    }
}

/// Saves `form` over what `path_name` names: the one pipeline.
pub(super) fn save<F: FormSave>(
    engine: &Engine,
    form: &mut F,
    path_name: &str,
) -> Result<Saved, EditError> {
    for candidate in [form.new_name(), path_name] {
        if let Some(problem) = profile::name_problem(candidate, F::WHAT) {
            return Err(EditError::BadName(problem));
        }
    }
    let located = form.locate(engine, path_name)?;
    let mut doc: toml_edit::DocumentMut = located.original.parse().map_err(|e| {
        EditError::Invalid(vec![Diagnostic::error(
            &located.file,
            "",
            format!("the file is not valid TOML, fix it in the file first: {e}"),
        )])
    })?;
    form.apply(engine, &mut doc, &located)?;
    let text = doc.to_string();
    if text == located.original && !located.renamed {
        return Ok(Saved::Unchanged);
    }
    form.check(engine, &located, &text)?;
    form.before_write(engine)?;
    if let Some(dir) = located.target.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| EditError::Io(format!("{}: {e}", dir.display())))?;
    }
    crate::tokens::write_atomically(&located.target, text.as_bytes())
        .map_err(|e| EditError::Io(e.to_string()))?;
    if located.renamed && located.file.exists() {
        std::fs::remove_file(&located.file)
            .map_err(|e| EditError::Io(format!("{}: {e}", located.file.display())))?;
    }
    engine.reload();
    Ok(Saved::Written)
}
