"""The project's one exception tree. The CLI turns any of these into one line and exit code 1.

LabError
├── ConfigError          settings, a corrupt state directory, a bad path
├── NotFound             an unknown lab, service, model version or alias
├── InvalidLab           a lab file that fails validation (names file and field)
├── InvalidDrill         a drill file that fails validation (names file and field)
├── InvalidRules         an alert-rule file that fails validation (names file and field)
├── InvalidRelease       a pipeline release that fails validation (names file and field)
├── InvalidAnalysis      a canary analysis file that fails validation (names file and field)
├── InvalidPolicy        an output-policy file that fails validation (names file and field)
├── InvalidFlags         a feature-flag file or value that fails validation (names file and field)
├── InvalidEvaluation    a test set or slice file that fails validation (names file and columns or field)
├── RuntimeNotReady      the sandbox (or one service) is not up, or cannot be reached
├── ServiceStartFailed   a service did not become healthy (names service and log file)
├── PortInUse            a port the sandbox needs is taken
├── RegistryError        MLflow refused or failed an operation
├── FaultInjectionFailed a drill fault could not be injected or reverted
├── GradingError         the journal does not allow a grade, or a rubric file fails validation
└── InvalidBundle        a result bundle that is unsigned, tampered with, or malformed (names the file)
"""

from __future__ import annotations


class LabError(Exception):
    """Base of every error a user can cause; its message says what was wrong and how to fix it."""


class ConfigError(LabError):
    """Raised for bad settings or a corrupt state directory."""


class NotFound(LabError):
    """Raised when a named thing (lab, service, version, alias) does not exist; lists what does."""


class InvalidLab(LabError):
    """Raised when a lab file fails validation."""


class InvalidDrill(LabError):
    """Raised when a drill file fails validation."""


class InvalidRules(LabError):
    """Raised when an alert-rule file fails validation."""


class InvalidRelease(LabError):
    """Raised when a pipeline release fails validation."""


class InvalidAnalysis(LabError):
    """Raised when a canary analysis file fails validation."""


class InvalidPolicy(LabError):
    """Raised when an output-policy file fails validation."""


class InvalidFlags(LabError):
    """Raised when a feature-flag file or a throttle share fails validation."""


class InvalidEvaluation(LabError):
    """Raised when an evaluation's test set or slice file fails validation."""


class RuntimeNotReady(LabError):
    """Raised when a command needs the sandbox (or a service of it) and it is not running."""


class ReportFailed(LabError):
    """Raised when a drift report cannot be rendered (no window judged yet, or the report process failed)."""


class ServiceStartFailed(LabError):
    """Raised when a service exits or misses its health deadline during start-up."""


class PortInUse(LabError):
    """Raised when a port the sandbox needs is taken."""

    @classmethod
    def taken(cls, port: int, service: str, setting: str | None) -> PortInUse:
        """The one message for a taken port: which, for what, and the setting that moves it (and where it goes)."""
        fix = (
            f"choose another port with {setting} (a line `{setting}=<port>` in the project's .env, or the variable)"
            if setting
            else "choose another port"
        )
        return cls(f"port {port} for {service} is already in use by another process; stop that process or {fix}")


class RegistryError(LabError):
    """Raised when the MLflow registry refuses or fails an operation."""


class GateRefused(RegistryError):
    """A move along the promotion path without the evidence its stage needs."""


class FaultInjectionFailed(LabError):
    """Raised when a drill fault cannot be injected or reverted."""


class GradingError(LabError):
    """Raised when the journal does not hold what a grade needs."""


class InvalidBundle(LabError):
    """Raised when a result bundle is unsigned, was changed after signing, or is malformed."""


class InvalidSkills(LabError):
    """Raised when the skills matrix names an unknown skill, role, level or piece of evidence."""


class LrsError(LabError):
    """Raised when a Learning Record Store refuses statements or stays unreachable (they stay queued)."""


class HubError(LabError):
    """Raised when the class hub cannot be started, reached or stopped."""


class ConsoleError(LabError):
    """Raised when the instructor console refuses a request or cannot be reached."""
