"""Orchestrators keep the plans' deadlines through the journal: the one that ran a run may be
gone, another acts when the deadline falls due, under the plan's lease, once; an orchestrator
whose plan another holds stands by. Two in-process orchestrators on SQLite and on the real
PostgreSQL, each with its own connections, as two sites would have."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

from journal_support import scene, small_plan
from orchestrator.stores import SharedStores
from vmfailover import Orchestrator
from vmfailover.engine import deadlines
from vmfailover.engine.aftercare_results import DeadlineAction
from vmfailover.engine.journal import EntryKind, Journal
from vmfailover.engine.lease import Lease
from vmfailover.engine.lease_keeper import LeaseKeeper
from vmfailover.engine.results import RunResult
from vmfailover.model import ReplicaState

RUNNER = {"poll_interval": 15.0}


def make(journal: Journal, backend: Any, lease: Lease, name: str) -> Orchestrator:
    return Orchestrator(
        journal, backend, lease, name=name, lease_seconds=2, poll=0.05, runner_options=RUNNER
    )


def test_the_next_orchestrator_commits_a_run_whose_deadline_fell_due(
    shared_stores: SharedStores,
) -> None:
    backend = scene("planned")
    plan = attrs.evolve(small_plan(), auto_commit=3600.0)
    first_journal, second_journal = shared_stores.journal(), shared_stores.journal()
    first_lease, second_lease = shared_stores.lease(), shared_stores.lease()
    site_a = make(first_journal, backend, first_lease, "site-a")
    run = site_a.submit(plan, "planned")
    report = run.wait(60)
    assert report.result is RunResult.SUCCEEDED, report
    site_a.run_once()  # reaps the run: its lease is given back
    (held,) = deadlines.pending_deadlines(first_journal).values()
    assert held.action is DeadlineAction.COMMIT
    assert held.at - (report.finished_at or held.at) == timedelta(hours=1)
    site_a.stop()  # the orchestrator that ran it is gone before its deadline

    site_b = make(second_journal, backend, second_lease, "site-b")
    assert site_b.keep_deadlines() == ()  # not due yet
    assert {r.state for r in backend.inventory().replicas} >= {ReplicaState.FAILED_OVER}
    backend.clock.advance_to(held.at)
    assert site_b.run_once() == ()  # no run to take over; the deadline acted on
    (summary,) = second_journal.runs()
    assert summary.state == "committed"
    history = second_journal.report(summary.run_id)
    assert history.report is not None and history.report.commit is not None
    assert history.report.commit.by == "deadline"
    state = second_lease.state(plan.name)
    assert state is not None and state.released and state.token.number == 2
    assert site_b.keep_deadlines() == ()  # acted once: nothing is pending any more
    site_b.stop()
    claims = second_journal.load(summary.run_id, [EntryKind.DEADLINE]).entries
    assert [("fired_by" in entry.payload()) for entry in claims] == [False, True]
    assert backend.faults.per_operation["commit_failover"] == len(plan.vms)
    for journal in (first_journal, second_journal):
        journal.close()
    for lease in (first_lease, second_lease):
        lease.close()


def test_an_orchestrator_whose_plan_another_holds_stands_by(shared_stores: SharedStores) -> None:
    backend = scene("planned")
    plan = attrs.evolve(small_plan(), auto_undo=600.0)
    journal, lease, other_lease = shared_stores.journal(), shared_stores.lease(), None
    site_a = make(journal, backend, lease, "site-a")
    run = site_a.submit(plan, "planned")
    assert run.wait(60).result is RunResult.SUCCEEDED
    site_a.run_once()
    backend.clock.advance(3600)  # long past due
    other_lease = shared_stores.lease()
    active = LeaseKeeper(other_lease, plan.name, ttl=30, holder="site-c/active")
    active.acquire()  # another orchestrator is active for the plan
    site_b_journal, site_b_lease = shared_stores.journal(), shared_stores.lease()
    site_b = make(site_b_journal, backend, site_b_lease, "site-b")
    assert site_b.keep_deadlines() == ()  # a standby never acts
    assert site_b_journal.report(run.id).summary.state == "failed_over"
    assert backend.faults.per_operation["undo_failover"] == 0
    active.release()
    (outcome,) = site_b.keep_deadlines()  # the plan's lease is free: this one is active now
    assert outcome.acted and outcome.finished and outcome.action is DeadlineAction.UNDO
    assert site_b_journal.report(run.id).summary.state == "undone"
    assert site_a.keep_deadlines() == ()  # the other sees it decided
    assert backend.faults.per_operation["undo_failover"] == len(plan.vms)
    for orchestrator in (site_a, site_b):
        orchestrator.stop()
    for store in (journal, site_b_journal, lease, other_lease, site_b_lease):
        store.close()
