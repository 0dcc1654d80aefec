"""Grading from the journal (issue 6). Imports lab_runtime.journal only."""
