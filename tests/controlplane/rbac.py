"""The plugin's documented permissions, read from the README itself.

The real tier binds users to exactly the Role the README prints under "Permissions", so the
documentation and the tests cannot drift apart: change the README's Role and the tests use it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["readme_role", "required_rules", "optional_rules", "read_only_rules"]

README = Path(__file__).resolve().parents[2] / "README.md"


def _role_text() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Permissions", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    if not match:
        raise LookupError("README.md has no yaml block under '## Permissions'")
    return match.group(1)


def readme_role() -> dict:
    """The Role as the README writes it."""
    import yaml

    return yaml.safe_load(_role_text())


def required_rules() -> list[dict]:
    """The rules above the README's `# optional` comment: what the restart needs."""
    import yaml

    head = _role_text().split("# optional", 1)[0]
    return yaml.safe_load(head)["rules"]


def optional_rules() -> list[dict]:
    """The rules below it: without them only the report is shorter."""
    required = required_rules()
    return [rule for rule in readme_role()["rules"] if rule not in required]


def read_only_rules() -> list[dict]:
    """The required rules without `patch`: may look, may not restart."""
    return [
        {**rule, "verbs": [v for v in rule["verbs"] if v != "patch"]} for rule in required_rules()
    ]
