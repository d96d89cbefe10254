"""Network mapping: which network at the recovery site each source network's NICs join.

Production failovers (planned and regular) and test failovers use separate tables, because a test
copy must never join a production network: it would answer on the same addresses as the running
source (duplicate IPs, split brain). :meth:`NetworkMapping.check` therefore refuses a test mapping
onto a network that is not marked ``isolated``, unless the mapping says so explicitly with
``allow_non_isolated_test=True``.

Pure: the inventory snapshot is passed in, nothing is looked up elsewhere.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping

import attrs

from vmfailover import _render
from vmfailover.errors import Finding, NotFoundError, Severity, ValidationError
from vmfailover.model import VM, FailoverKind, Inventory, Network, as_enum

__all__ = ["NetworkMapping"]


def _table(name: str, value: object) -> types.MappingProxyType[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError.of(
            f"NetworkMapping {name}",
            f"expected a mapping of source network to target network, got {value!r}",
            f'for example {name}={{"VM Network": "DR Network"}}',
        )
    findings = []
    for source, target in value.items():
        for role, text in (("source", source), ("target", target)):
            if not isinstance(text, str) or not text.strip():
                findings.append(
                    Finding(
                        f"NetworkMapping {name}[{source!r}]",
                        f"the {role} network name must be a non-empty string, got {text!r}",
                    )
                )
    if findings:
        raise ValidationError(findings)
    return types.MappingProxyType(dict(value))


def _production_table(value: Mapping[str, str]) -> types.MappingProxyType[str, str]:
    return _table("production", value)


def _test_table(value: Mapping[str, str]) -> types.MappingProxyType[str, str]:
    return _table("test", value)


def _show(table: Mapping[str, str]) -> str:
    return repr(dict(table))


@attrs.frozen
class NetworkMapping:
    """Where each source network goes: ``production`` for planned and regular failovers, ``test``
    for test failovers.

    ``same_name=True`` maps a network with no explicit entry to the target network of the same
    name (in either table; a test failover still has to land on an isolated network).
    ``allow_non_isolated_test=True`` turns the refusal of a test mapping onto a non-isolated
    network into a warning; set it only for labs where production is not reachable anyway.
    """

    production: Mapping[str, str] = attrs.field(
        factory=dict, converter=_production_table, repr=_show, hash=False
    )
    test: Mapping[str, str] = attrs.field(
        factory=dict, converter=_test_table, repr=_show, hash=False
    )
    same_name: bool = False
    allow_non_isolated_test: bool = False

    def __attrs_post_init__(self) -> None:
        for name in ("same_name", "allow_non_isolated_test"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError.of(
                    f"NetworkMapping {name}", f"must be True or False, got {getattr(self, name)!r}"
                )

    def table(self, kind: FailoverKind | str) -> Mapping[str, str]:
        """The explicit entries used for failovers of ``kind``."""
        is_test = as_enum(FailoverKind, kind, "kind") is FailoverKind.TEST
        return self.test if is_test else self.production

    def target(self, network: str, kind: FailoverKind | str) -> str:
        """The name of the target network for NICs on ``network`` in a failover of ``kind``.

        Raises :class:`ValidationError` when the network is not mapped. Whether the target
        exists, and is isolated for a test, depends on the inventory: see :meth:`resolve`.
        """
        kind = as_enum(FailoverKind, kind, "kind")
        if not isinstance(network, str):
            raise ValidationError.of("network", f"expected a network name, got {network!r}")
        found = self.table(kind).get(network)
        if found is not None:
            return found
        if self.same_name:
            return network
        table = "test" if kind is FailoverKind.TEST else "production"
        raise ValidationError.of(
            f"network {network!r}",
            f"has no {table} mapping",
            f"add {network!r} to NetworkMapping({table}=...) or set same_name=True",
        )

    def resolve(
        self, inventory: Inventory, site: str, network: str, kind: FailoverKind | str
    ) -> Network:
        """The target :class:`~vmfailover.model.Network` at ``site``, checked: it exists, and for a
        test it is isolated (unless allowed). Raises :class:`ValidationError` otherwise."""
        kind = as_enum(FailoverKind, kind, "kind")
        target, findings = self._resolve(inventory, site, network, kind, "")
        blocking = [finding for finding in findings if finding.blocking]
        if blocking or target is None:
            raise ValidationError(blocking or findings)
        return target

    def check(
        self,
        inventory: Inventory,
        vms: Iterable[VM | str] | VM | str,
        kind: FailoverKind | str,
        *,
        target_site: str | None = None,
    ) -> list[Finding]:
        """Findings for every NIC of ``vms`` (VM objects, ids or names) in a failover of ``kind``.

        The target site is ``target_site`` if given, otherwise each VM's replica's host's site.
        Errors: a VM that is unknown or whose target site cannot be found, a network with no
        mapping, a target network that does not exist at the target site, a test target that is
        not isolated. Warnings: a test target allowed although not isolated, a production
        failover onto an isolated network (clients would not reach the VM).
        """
        kind = as_enum(FailoverKind, kind, "kind")
        if target_site is not None:
            try:
                inventory.site(target_site)
            except NotFoundError:
                return [
                    Finding(
                        f"target site {target_site!r}",
                        "does not exist in the inventory",
                        hint="give the name of one of the inventory's sites",
                    )
                ]
        findings: list[Finding] = []
        for key in (vms,) if isinstance(vms, VM | str) else vms:
            vm = self._vm(inventory, key, findings)
            if vm is None:
                continue
            site = target_site if target_site is not None else self._target_site(inventory, vm)
            if site is None:
                findings.append(
                    Finding(
                        f"VM {vm.name!r}",
                        "has no replica, so its target site is unknown",
                        hint="give check(..., target_site=...) or create a replica first",
                    )
                )
                continue
            for nic in vm.nics:
                item = f"VM {vm.name!r} NIC {nic.mac}"
                findings.extend(self._resolve(inventory, site, nic.network, kind, item)[1])
        return findings

    # --- helpers ---

    @staticmethod
    def _vm(inventory: Inventory, key: object, findings: list[Finding]) -> VM | None:
        if isinstance(key, VM):
            return key
        if not isinstance(key, str):
            findings.append(Finding(f"VM {key!r}", "expected a VM, its id or its name"))
            return None
        try:
            return inventory.vm(key)
        except NotFoundError as exc:
            findings.append(Finding(f"VM {key!r}", str(exc)))
            return None

    @staticmethod
    def _target_site(inventory: Inventory, vm: VM) -> str | None:
        try:
            replica = inventory.replica_of(vm.id)
            return inventory.host(replica.target_host).site
        except NotFoundError:
            return None

    def _resolve(
        self, inventory: Inventory, site: str, network: str, kind: FailoverKind, item: str
    ) -> tuple[Network | None, list[Finding]]:
        subject = item or f"network {network!r}"
        try:
            name = self.target(network, kind)
        except ValidationError as exc:
            finding = exc.findings[0]
            message = f"{finding.item} {finding.message}"
            return None, [Finding(subject, message, hint=finding.hint)]
        if not inventory.has_network(site, name):
            return None, [
                Finding(
                    subject,
                    f"network {network!r} maps to {name!r}, which does not exist at site {site!r}",
                    hint=f"create {name!r} at {site!r} or map {network!r} elsewhere",
                )
            ]
        target = inventory.network(site, name)
        findings: list[Finding] = []
        if kind is FailoverKind.TEST and not target.isolated:
            message = (
                f"test failover maps {network!r} onto {name!r} at {site!r}, which is not "
                "isolated: the test copy would meet production (duplicate IPs, split brain)"
            )
            if self.allow_non_isolated_test:
                findings.append(
                    Finding(
                        subject, message + "; allowed by allow_non_isolated_test", Severity.WARNING
                    )
                )
            else:
                findings.append(
                    Finding(
                        subject,
                        message,
                        hint="map it to an isolated network, or set "
                        "allow_non_isolated_test=True if that is really wanted",
                    )
                )
        elif kind is not FailoverKind.TEST and target.isolated:
            findings.append(
                Finding(
                    subject,
                    f"{kind.value} failover maps {network!r} onto the isolated network "
                    f"{name!r}: clients will not reach the VM",
                    Severity.WARNING,
                    "map it to a production network unless that is intended",
                )
            )
        return target, findings

    # --- rendering ---

    _HEADERS = ("source network", "production target", "test target")

    def _rows(self) -> list[list[str]]:
        fallback = "(same name)" if self.same_name else "(unmapped)"
        names = sorted(set(self.production) | set(self.test))
        return [
            [name, self.production.get(name, fallback), self.test.get(name, fallback)]
            for name in names
        ]

    def _title(self) -> str:
        flags = []
        if self.same_name:
            flags.append("same_name")
        if self.allow_non_isolated_test:
            flags.append("allow_non_isolated_test")
        return "Network mapping" + (f" ({', '.join(flags)})" if flags else "")

    def __str__(self) -> str:
        return _render.text_table(self._HEADERS, self._rows(), title=self._title())

    def _repr_html_(self) -> str:
        return _render.html_table(self._HEADERS, self._rows(), title=self._title())
