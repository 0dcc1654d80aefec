"""A sandbox's link to the instructor console: the wire format both sides speak (`wire`), and the agent that ships
the sandbox's journal and runs the console's drill orders (`agent`, run as `python -m lab_runtime.console`)."""
