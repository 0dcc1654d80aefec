"""The upstream pipeline: production traffic to the model service, shaped by versioned releases.

`releases` (pure: transforms as data), `store` (releases, deployments, the stream cursor; ship and
rollback), `traffic` (the supervised process).
"""
