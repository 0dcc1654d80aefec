"""A team for a drill run (`lab drill run ID --team NAME --members a,b --roles a=commander`): its name, members and
their roles as in game-day practice, checked. Pure."""

from __future__ import annotations

from lab_runtime.errors import LabError
from lab_runtime.events import Team
from lab_runtime.settings import learner_refusal

ROLES = ("commander", "operator", "communications", "scribe")  # an incident commander leads; operators act


def parse_team(name: str, members: str, roles: str | None = None) -> Team:
    """The team `name` of the comma-separated `members`, with `roles` as `member=role,...`; LabError naming what
    is wrong."""
    if refusal := learner_refusal(name, "--team"):
        raise LabError(refusal)
    people = [m.strip() for m in members.split(",") if m.strip()]
    if len(people) < 2 or len(set(people)) != len(people):
        raise LabError(f"--members {members!r}: name two or more different learners, comma-separated (ada,bob)")
    for person in people:
        if refusal := learner_refusal(person, "--members"):
            raise LabError(refusal)
    if name in people:
        raise LabError(f"--team {name!r} is also a member's name; give the team a name of its own")
    given: dict[str, str] = {}
    for pair in (roles or "").split(","):
        if not pair.strip():
            continue
        person, _, role = pair.partition("=")
        person, role = person.strip(), role.strip()
        if person not in people:
            raise LabError(f"--roles {pair.strip()!r}: {person!r} is not a member ({', '.join(people)})")
        if role not in ROLES:
            raise LabError(f"--roles {pair.strip()!r}: unknown role {role!r}; roles are {', '.join(ROLES)}")
        given[person] = role
    return Team(name=name, members=people, roles=given)


def team_args(team: Team | None) -> list[str]:
    """The `lab drill run` options that give this team (for a runner started in the background)."""
    if team is None:
        return []
    args = ["--team", team["name"], "--members", ",".join(team["members"])]
    roles = ",".join(f"{m}={r}" for m, r in team["roles"].items())
    return args + (["--roles", roles] if roles else [])


def team_of(team: str | None, members: str | None, roles: str | None, learner: str | None) -> Team | None:
    """The team the `--team`, `--members` and `--roles` options give (None: no team); LabError when they are half
    given, or given with `--learner` (a team's run is the team's; its members act as themselves)."""
    if team is None and members is None and roles is None:
        return None
    if team is None or members is None:
        raise LabError("a team needs --team NAME and --members a,b (and optionally --roles a=commander)")
    if learner is not None:
        raise LabError("--learner and --team exclude each other: the team's members act as themselves")
    return parse_team(team, members, roles)
