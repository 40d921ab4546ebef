"""``kubectl_complete-restart_backend``: shell completion for ``kubectl restart-backend``.

kubectl 1.26+ completes a plugin by running ``kubectl_complete-<plugin> ARGS... WORD`` (WORD is
the partial word under the cursor, possibly empty) and reading cobra's protocol back: one
candidate per line (``candidate<TAB>description`` allowed), then a directive line such as
``:4`` (4 = no file completion; 0 = let the shell complete file names).

What we offer, and where it comes from:

* flags: read from the click command in ``cli.py`` (importing it costs only click);
* ``--context``/``--cluster``/``--user``: names in the kubeconfig, parsed as YAML only;
* ``-o`` and any other choice-typed flag: the choices click knows;
* ``-n``, ``--deployment``, ``-w`` and the WORKLOAD of ``link``/``unlink``: only the cluster
  knows, so only these import the client. Namespaces are the ones holding Deployments
  (listed across namespaces): that needs no permission beyond what a restart needs, where
  listing namespaces needs a cluster-wide one. Workloads are the Deployments, StatefulSets
  and DaemonSets of the namespace: ``statefulset/db`` for ``-w`` (also after ``sts/``), and a
  plain name for a Deployment where a plain name means one (``link api``);
* ``--kind``: the three kinds.

Deciding (``complete``) is pure over the click command, the words and a ``Lookup``; the
lookups that read files or ask the cluster live in ``ClusterLookup``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Optional, Protocol, Sequence

import click

NO_FILE_COMPLETION = 4
FILE_COMPLETION = 0
LOOKUP_DEADLINE_SECONDS = 2.0  # no retries after this: a TAB must not hang
LOOKUP_REQUEST_TIMEOUT = 3.0

# Flags whose values name something; the value is the Lookup method that lists them.
NAMED_VALUES = {
    "--context": "contexts",
    "--cluster": "clusters",
    "--user": "users",
    "--namespace": "namespaces",
    "--deployment": "deployments",
    "--workload": "workloads",
}
KIND_WORDS = ("deployment", "statefulset", "daemonset")
FILE_VALUES = {"--kubeconfig"}
# Flags whose values change what the lookups see (kubectl's connection flags).
CONNECTION_FLAGS = {
    "--kubeconfig": "kubeconfig",
    "--context": "context",
    "--cluster": "cluster",
    "--user": "user",
    "--namespace": "namespace",
}


@dataclass(frozen=True)
class Flag:
    """One option of the click command, as completion needs it."""

    names: tuple[str, ...]  # e.g. ("-n", "--namespace")
    takes_value: bool
    choices: tuple[str, ...]
    help: str

    @property
    def long_name(self) -> str:
        longs = [name for name in self.names if name.startswith("--")]
        return longs[0] if longs else self.names[0]


@dataclass(frozen=True)
class Completion:
    candidates: tuple[str, ...]
    directive: int = NO_FILE_COMPLETION

    def render(self) -> str:
        return "".join(f"{line}\n" for line in self.candidates) + f":{self.directive}\n"


@dataclass(frozen=True)
class ConnectionFlags:
    """The connection flags typed so far; lookups must honour them as the restart would."""

    kubeconfig: Optional[str] = None
    context: Optional[str] = None
    cluster: Optional[str] = None
    user: Optional[str] = None
    namespace: Optional[str] = None


class Lookup(Protocol):
    def contexts(self, flags: ConnectionFlags) -> list[str]: ...
    def clusters(self, flags: ConnectionFlags) -> list[str]: ...
    def users(self, flags: ConnectionFlags) -> list[str]: ...
    def namespaces(self, flags: ConnectionFlags) -> list[str]: ...
    def deployments(self, flags: ConnectionFlags) -> list[str]: ...
    def workloads(self, flags: ConnectionFlags) -> list[str]: ...  # kind/name, all three kinds


# ---------------------------------------------------------------------------------------
# Deciding (pure)
# ---------------------------------------------------------------------------------------


def flags_of(command: click.Command) -> list[Flag]:
    """The command's options (help included), in the order ``--help`` lists them."""
    params = list(command.params)
    help_option = command.get_help_option(click.Context(command, **command.context_settings))
    if help_option is not None:
        params.append(help_option)
    flags = []
    for param in params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        takes_value = not (param.is_flag or param.count)
        choices = tuple(param.type.choices) if isinstance(param.type, click.Choice) else ()
        summary = (param.help or "").strip().splitlines()[0] if param.help else ""
        for names in (param.opts, param.secondary_opts):
            if names:
                flags.append(Flag(tuple(names), takes_value, choices, summary))
    return flags


def complete(command: click.Command, args: Sequence[str], word: str, lookup: Lookup) -> Completion:
    """What to offer for ``word``, given the words typed before it."""
    command, args = _subcommand(command, args)
    flags = flags_of(command)
    by_name = {name: flag for flag in flags for name in flag.names}
    values_at = value_positions(args, by_name)
    connection = connection_flags(args, by_name)

    if word.startswith("-") and "=" in word:
        name, _, partial = word.partition("=")
        flag = by_name.get(name)
        if flag is None or not flag.takes_value:
            return Completion(())
        values = _values(flag, partial, connection, lookup)
        return Completion(tuple(f"{name}={v}" for v in values.candidates), values.directive)
    if len(args) in values_at:  # the word is the value of the flag before it
        return _values(by_name[args[-1]], word, connection, lookup)
    subcommands = sorted(getattr(command, "commands", None) or {})
    if subcommands and not word.startswith("-"):
        return Completion(tuple(name for name in subcommands if name.startswith(word)))
    positionals = [a for i, a in enumerate(args) if not a.startswith("-") and i not in values_at]
    if not word.startswith("-") and _names_workload(command, len(positionals)):
        names = [_plain_deployment(n) for n in lookup.workloads(connection)]
        return Completion(tuple(sorted(workload_candidates(names, word))))
    return Completion(tuple(_flag_candidates(flags, args, word)))


def _names_workload(command: click.Command, position: int) -> bool:
    """Whether the command's argument at ``position`` names a workload (``link WORKLOAD``)."""
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if position >= len(arguments):
        return False
    argument = arguments[position]
    return any(w in (argument.metavar or "").upper() for w in ("WORKLOAD", "DEPLOYMENT"))


def _plain_deployment(ref: str) -> str:
    """``deployment/api`` -> ``api``: where a plain name means a Deployment."""
    kind, _, name = ref.partition("/")
    return name if kind == "deployment" else ref


def workload_candidates(names: Iterable[str], word: str) -> list[str]:
    """The names that complete ``word``; after ``sts/`` (or any alias of a kind) the names
    of that kind, written with the alias typed."""
    typed, sep, rest = word.partition("/")
    if not sep:
        return [n for n in names if n.startswith(word)]
    from kubectl_restart_backend.errors import PluginError
    from kubectl_restart_backend.kinds import kind_named

    try:
        kind = kind_named(typed)
    except PluginError:
        return []
    prefix = f"{kind.word}/"
    return [
        f"{typed}/{n[len(prefix) :]}"
        for n in names
        if n.startswith(prefix) and n[len(prefix) :].startswith(rest)
    ]


def value_positions(args: Sequence[str], by_name: Mapping[str, Flag]) -> set[int]:
    """Indexes of the words that are flag values (``--context NAME``: NAME's index).

    The index just past the end means the word being completed is such a value.
    """
    positions = set()
    index = 0
    while index < len(args):
        flag = by_name.get(args[index]) if args[index].startswith("-") else None
        if flag is not None and flag.takes_value:
            positions.add(index + 1)
            index += 2
        else:
            index += 1
    return positions


def connection_flags(args: Sequence[str], by_name: Mapping[str, Flag]) -> ConnectionFlags:
    """``--kubeconfig``/``--context``/... values typed so far (last one wins, as in click)."""
    found: dict[str, str] = {}
    values_at = value_positions(args, by_name)
    for index, arg in enumerate(args):
        if not arg.startswith("-") or index in values_at:
            continue
        name, has_inline, inline = arg.partition("=")
        flag = by_name.get(name)
        if flag is None or flag.long_name not in CONNECTION_FLAGS:
            continue
        if has_inline:
            found[CONNECTION_FLAGS[flag.long_name]] = inline
        elif index + 1 < len(args):
            found[CONNECTION_FLAGS[flag.long_name]] = args[index + 1]
    return ConnectionFlags(**found)


def _subcommand(command: click.Command, args: Sequence[str]) -> tuple[click.Command, Sequence[str]]:
    """The subcommand being typed (if the group has any), and the words after its name."""
    commands = getattr(command, "commands", None) or {}
    if not commands:
        return command, args
    by_name = {name: flag for flag in flags_of(command) for name in flag.names}
    values_at = value_positions(args, by_name)
    for index, arg in enumerate(args):
        if arg in commands and index not in values_at:
            return commands[arg], args[index + 1 :]
    return command, args


def _flag_candidates(flags: Iterable[Flag], args: Sequence[str], word: str) -> list[str]:
    used = {arg.partition("=")[0] for arg in args if arg.startswith("-")}
    candidates = []
    for flag in flags:
        if used.intersection(flag.names):
            continue
        for name in flag.names:
            if name.startswith(word) and (name.startswith("--") or word in ("-", name)):
                candidates.append(f"{name}\t{flag.help}" if flag.help else name)
    return candidates


def _values(flag: Flag, partial: str, connection: ConnectionFlags, lookup: Lookup) -> Completion:
    if flag.long_name in FILE_VALUES:
        return Completion((), FILE_COMPLETION)
    if flag.choices:
        names: Iterable[str] = flag.choices
    elif flag.long_name == "--kind":
        names = KIND_WORDS
    elif flag.long_name == "--workload":
        found = workload_candidates(lookup.workloads(connection), partial)
        return Completion(tuple(sorted(set(found))))
    elif flag.long_name in NAMED_VALUES:
        names = getattr(lookup, NAMED_VALUES[flag.long_name])(connection)
    else:
        names = ()
    return Completion(tuple(sorted({n for n in names if n.startswith(partial)})))


# ---------------------------------------------------------------------------------------
# Looking things up (files, the cluster)
# ---------------------------------------------------------------------------------------


class ClusterLookup:
    """Names from the kubeconfig (YAML only) and from the cluster (client imported lazily)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def contexts(self, flags: ConnectionFlags) -> list[str]:
        return self._kubeconfig_names(flags, "contexts")

    def clusters(self, flags: ConnectionFlags) -> list[str]:
        return self._kubeconfig_names(flags, "clusters")

    def users(self, flags: ConnectionFlags) -> list[str]:
        return self._kubeconfig_names(flags, "users")

    def namespaces(self, flags: ConnectionFlags) -> list[str]:
        """Namespaces that hold Deployments, plus the context's own namespace."""
        from kubectl_restart_backend.errors import PluginError

        try:
            session = self._session(replace(flags, namespace=None))
            found = {session.namespace}
            listing = session.api.list("deployments")
        except PluginError:
            return []
        found.update(item["metadata"]["namespace"] for item in listing.items)
        return sorted(found)

    def deployments(self, flags: ConnectionFlags) -> list[str]:
        """Deployments in ``-n`` (or the context's namespace), as the restart would look."""
        from kubectl_restart_backend.errors import PluginError

        try:
            session = self._session(flags)
            listing = session.api.list("deployments", session.namespace)
        except PluginError:
            return []
        return sorted(item["metadata"]["name"] for item in listing.items)

    def workloads(self, flags: ConnectionFlags) -> list[str]:
        """Deployments, StatefulSets and DaemonSets in ``-n`` (or the context's namespace),
        as ``kind/name``; a kind that may not be listed is left out."""
        from kubectl_restart_backend.errors import PluginError
        from kubectl_restart_backend.kinds import KINDS

        try:
            session = self._session(flags)
        except PluginError:
            return []
        found = []
        for kind in KINDS:
            try:
                listing = session.api.list(kind.resource, session.namespace)
            except PluginError:
                continue
            found += [kind.ref(item["metadata"]["name"]) for item in listing.items]
        return sorted(found)

    def _kubeconfig_names(self, flags: ConnectionFlags, section: str) -> list[str]:
        from kubectl_restart_backend.errors import PluginError
        from kubectl_restart_backend.kubeconfig import (
            kubeconfig_paths,
            load_files,
            merge_kubeconfigs,
        )

        paths = kubeconfig_paths(flags.kubeconfig, self._env)
        try:
            merged = merge_kubeconfigs(load_files(paths, explicit=bool(flags.kubeconfig)))
        except PluginError:
            return []
        return [entry["name"] for entry in merged.get(section) or []]

    def _session(self, flags: ConnectionFlags):  # -> session.Session
        from kubectl_restart_backend.session import ConnectOptions, open_session

        connect = ConnectOptions(
            kubeconfig=flags.kubeconfig,
            context=flags.context,
            cluster=flags.cluster,
            user=flags.user,
            namespace=flags.namespace,
            request_timeout=LOOKUP_REQUEST_TIMEOUT,
        )
        deadline = time.monotonic() + LOOKUP_DEADLINE_SECONDS
        return open_session(connect, self._env, deadline=deadline)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console-script entry point (``kubectl_complete-restart_backend ARGS... WORD``)."""
    from kubectl_restart_backend.cli import main_group

    words = list(sys.argv[1:] if argv is None else argv)
    word = words.pop() if words else ""
    result = complete(main_group, words, word, ClusterLookup(dict(os.environ)))
    sys.stdout.write(result.render())
