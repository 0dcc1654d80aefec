"""The MLflow model registry: read over REST, changed by model operations, its alias history kept and watched."""
