"""The instructor console (`lab console serve`): a class's sandboxes live in one page. `store` keeps what they
ship and what the instructor orders, `roster` turns a learner's events into their row (pure), `pages` renders
HTML (pure), `app` is the web application (the agents' API, the instructor's and learners' pages and API)."""
