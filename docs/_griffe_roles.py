"""A griffe extension for the API reference: our docstrings' Sphinx roles become links.

The docstrings use Sphinx roles (``:class:`~vmfailover.plan.FailoverPlan```), which read well in
``help()`` and in editors; mkdocstrings renders Markdown and would print them verbatim. This turns
each role into an optional cross-reference: a link where the target is in the reference, plain
code where it is not (so a reference to a private helper never breaks ``mkdocs build --strict``).
A ``~`` shows the last part of the name only, as in Sphinx.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj|const):`(~?)([^`<>]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrites Sphinx roles in every docstring into mkdocs-autorefs optional references."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None or ":`" not in docstring.value:
            return

        def link(match: re.Match[str]) -> str:
            short, target = match.group(1) == "~", match.group(2).strip()
            shown = target.rsplit(".", 1)[-1] if short else target
            identifier = _resolve(obj, target)
            return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'

        docstring.value = _ROLE.sub(link, docstring.value)


def _resolve(obj: griffe.Object, target: str) -> str:
    """A name as written relative to ``obj`` (its class, then its module) -> a full path."""
    if target.startswith("vmfailover"):
        return target
    head = target.split(".", 1)[0]
    scope: Any = obj
    while scope is not None:
        members = getattr(scope, "members", {})
        if head in members:
            return f"{scope.path}.{target}"
        scope = scope.parent
    return target
