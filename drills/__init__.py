"""The drill engine and catalog (issue 4). Imports lab_runtime; lab_runtime never imports it."""
