"""The model service: FastAPI app serving `@champion` (and `@challenger` to a canary share)."""
