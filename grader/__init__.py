"""Grading from the journal: drill runs, capstones, signed result bundles, cohorts and their reports. Imports
`lab_runtime` (the settings, journal, event kinds, errors, durations, YAML files); `lab_runtime` never imports
it, but for the CLI."""
