//! Non-fatal findings as data (Lanelet2's validators style): a map can live with them, a report
//! lists them, nothing is logged and forgotten.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; the output is as good as it can be.
    Info,
    /// The output is usable but degraded here.
    Warning,
    /// This element of the output is wrong or missing; the rest is usable.
    Error,
}

/// One finding: what, where (element or file), how bad.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// Severity of the finding.
    pub severity: Severity,
    /// The element, file or record the finding is about (e.g. `lane_boundary 42`, `scan 0013.pcd`).
    pub element: String,
    /// What was found, in one sentence.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}: {}", self.severity, self.element, self.message)
    }
}

/// A collection of [`Issue`]s gathered by a stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Issues {
    items: Vec<Issue>,
}

impl Issues {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a finding.
    pub fn push(&mut self, severity: Severity, element: impl Into<String>, message: impl Into<String>) {
        self.items.push(Issue { severity, element: element.into(), message: message.into() });
    }

    /// Records an informational finding.
    pub fn info(&mut self, element: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Info, element, message);
    }

    /// Records a warning.
    pub fn warn(&mut self, element: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, element, message);
    }

    /// Records an error-level finding (the element is bad, the run goes on).
    pub fn error(&mut self, element: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, element, message);
    }

    /// All findings in the order they were recorded.
    pub fn iter(&self) -> impl Iterator<Item = &Issue> {
        self.items.iter()
    }

    /// Number of findings.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of findings at or above `severity`.
    pub fn count_at_least(&self, severity: Severity) -> usize {
        self.items.iter().filter(|i| i.severity >= severity).count()
    }

    /// Moves all findings of `other` into `self`.
    pub fn extend(&mut self, other: Issues) {
        self.items.extend(other.items);
    }
}
