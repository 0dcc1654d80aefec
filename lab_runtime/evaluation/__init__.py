"""The evaluation harness and its human review: a version scored on a versioned test set and named slices, against
another version on the same rows (paired bootstrap intervals, slice regressions flagged, output-policy violations
counted), a go/no-go verdict recorded on the version, an HTML report, and a review queue people label.

Pure: `testset` (columns checked), `slices` (+ `slices.yaml`), `stats`, `judge`, `review`, `coverage`, `report`.
I/O: `store` (the review queue and labels, `.lab/reviews.db`), `harness` (`lab eval run`: MLflow, tags, report,
journal), `reviewing` (`lab review ...`).
"""
