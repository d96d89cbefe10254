"""Concurrent reads on one connection go out together, and one thread's missing VM fails only it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from vmfailover.backends.vsphere import VSphereBackend, properties
from vmfailover.backends.vsphere.properties import retrieve_objects, retrieve_view
from vmfailover.errors import NotFoundError
from vmfailover.testing.vcsim import VCSim


def test_reads_queued_behind_one_on_the_wire_go_out_as_one(
    vcsim_session: VCSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = VSphereBackend([vcsim_session.vcenter("site-a", datacenter="DC0")])
    conn = backend.connection("site-a")
    every = retrieve_view(conn, conn.content.rootFolder, {"VirtualMachine": ("name",)}, what="vms")
    names = {item.moref: item.get("name") for item in every}
    refs = [conn.managed("VirtualMachine", moref) for moref in sorted(names)]
    missing = conn.managed("VirtualMachine", "vm-999999")
    combiner = properties.combiner(conn)

    sent: list[int] = []  # objects per round trip
    gate = threading.Event()
    original = properties._read_now

    def held_first(conn: Any, objects: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(len(objects))
        if len(sent) == 1:
            assert gate.wait(10)
        return original(conn, objects, *args, **kwargs)

    monkeypatch.setattr(properties, "_read_now", held_first)
    results: dict[str, object] = {}

    def read(ref: Any) -> None:
        try:
            found = retrieve_objects(conn, [ref], {"VirtualMachine": ("name",)}, what="reading")
            results[ref._moId] = found[0].get("name")
        except NotFoundError as error:
            results[ref._moId] = error

    first = threading.Thread(target=read, args=(refs[0],))
    first.start()
    others = [threading.Thread(target=read, args=(ref,)) for ref in [*refs[1:], missing]]
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.01)
    for thread in others:
        thread.start()
    while len(combiner._queue) < len(others) and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for thread in (first, *others):
        thread.join(10)

    # the first read alone, then every queued read in one round trip, then the missing VM alone
    assert sent == [1, len(others), 1]
    assert {moref: results[moref] for moref in names} == names
    assert isinstance(results["vm-999999"], NotFoundError)
    backend.close()
