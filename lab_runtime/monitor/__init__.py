"""The drift and quality monitor: windows of the prediction log against the reference set, alert rules."""
