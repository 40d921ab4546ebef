"""Bearer tokens to users, and RBAC-like authorization with the API server's 403 wording.

A user's rules look like the rules of an RBAC Role/ClusterRole, plus an optional list of
namespaces they apply in (a Role bound in those namespaces; no list = a ClusterRole bound
cluster-wide). Resources may name subresources (`deployments/scale`, `pods/log`); `*` matches all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = [
    "Rule",
    "User",
    "Attributes",
    "Authorizer",
    "ADMIN_RULES",
    "ANONYMOUS",
    "rule",
    "forbidden_message",
]


@dataclass(frozen=True)
class Rule:
    """One RBAC-style policy rule; `namespaces=None` means every namespace and cluster scope."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ("*",)
    resource_names: tuple[str, ...] = ()
    namespaces: tuple[str, ...] | None = None


def rule(
    verbs: Iterable[str] | str,
    resources: Iterable[str] | str = "*",
    api_groups: Iterable[str] | str = "*",
    namespaces: Iterable[str] | str | None = None,
    resource_names: Iterable[str] | str = (),
) -> Rule:
    """A Rule from strings or lists: `rule(["get", "list"], "deployments", "apps", "shop")`."""

    def tup(value: Iterable[str] | str) -> tuple[str, ...]:
        return (value,) if isinstance(value, str) else tuple(value)

    return Rule(
        verbs=tup(verbs),
        api_groups=tup(api_groups),
        resources=tup(resources),
        resource_names=tup(resource_names),
        namespaces=None if namespaces is None else tup(namespaces),
    )


def _coerce_rule(value: Rule | Mapping[str, Any]) -> Rule:
    """A Rule, or an RBAC-shaped dict (apiGroups, resources, verbs, resourceNames, namespaces)."""
    if isinstance(value, Rule):
        return value
    return rule(
        value.get("verbs", ()),
        value.get("resources", ("*",)),
        value.get("apiGroups", ("*",)),
        value.get("namespaces"),
        value.get("resourceNames", ()),
    )


ADMIN_RULES = (Rule(verbs=("*",)),)


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ("system:authenticated",)
    rules: tuple[Rule, ...] = ()


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",), ())


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, as the authorizer sees it."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def _matches(rule_: Rule, attrs: Attributes) -> bool:
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (
        ("*" in rule_.verbs or attrs.verb in rule_.verbs)
        and ("*" in rule_.api_groups or attrs.group in rule_.api_groups)
        and (
            "*" in rule_.resources
            or resource in rule_.resources
            or (attrs.subresource and f"*/{attrs.subresource}" in rule_.resources)
        )
        and (not rule_.resource_names or attrs.name in rule_.resource_names)
        and (rule_.namespaces is None or (attrs.namespace and attrs.namespace in rule_.namespaces))
    )


def forbidden_message(user: User, attrs: Attributes, group_resource: str) -> str:
    """The API server's wording, e.g. `deployments.apps "x" is forbidden: User "dev" cannot patch
    resource "deployments" in API group "apps" in the namespace "shop"`."""
    target = f'{group_resource} "{attrs.name}"' if attrs.name else group_resource
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'{target} is forbidden: User "{user.name}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.group}" {scope}'
    )


@dataclass
class Authorizer:
    """Token -> user table and the rule check; safe to change while the server runs."""

    _users: dict[str, User] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(
        self,
        name: str,
        token: str,
        rules: Iterable[Rule | Mapping[str, Any]],
        groups: Iterable[str] = ("system:authenticated",),
    ) -> User:
        user = User(name, tuple(groups), tuple(_coerce_rule(r) for r in rules))
        with self._lock:
            self._users[token] = user
        return user

    def user_named(self, name: str, groups: tuple[str, ...]) -> User:
        """The user a verified client certificate (CN, Os) or impersonation names: the rules
        of the user of that name if one was added (else none), the given groups."""
        with self._lock:
            known = next((u for u in self._users.values() if u.name == name), None)
        rules = known.rules if known is not None else ()
        return User(name, (*groups, "system:authenticated"), rules)

    def remove_token(self, token: str) -> None:
        with self._lock:
            self._users.pop(token, None)

    def authenticate(self, token: str | None) -> User | None:
        """The user for a bearer token; ANONYMOUS without a token; None for an unknown token."""
        if not token:
            return ANONYMOUS
        with self._lock:
            return self._users.get(token)

    @staticmethod
    def allowed(user: User, attrs: Attributes) -> bool:
        return any(_matches(r, attrs) for r in user.rules)
