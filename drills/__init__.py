"""The drill engine and its catalog of drills. Imports `lab_runtime`; `lab_runtime` imports it only lazily: the
CLI, and a lab's drill ids checked against the catalog."""
