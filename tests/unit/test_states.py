"""The state machine, checked exhaustively against the rules in DESIGN.md."""

from __future__ import annotations

import itertools

import pytest

from jobyard.states import (
    LIVE,
    PENDING,
    TERMINAL,
    Control,
    Event,
    IllegalTransition,
    JobState,
    Outcome,
    allowed_events,
    initial_state,
    transition,
)

USER = (Event.START, Event.PAUSE, Event.RESUME, Event.KILL)


REOPEN = (JobState.UPSTREAM_FAILED, Event.UNBLOCK)


@pytest.mark.parametrize(
    ("state", "event"),
    [pair for pair in itertools.product(sorted(TERMINAL), Event) if pair != REOPEN],
)
def test_a_terminal_job_accepts_nothing(state: JobState, event: Event) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(state, event)
    assert info.value.state is state
    assert state.value in str(info.value)


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.SCHEDULED, JobState.WAITING])
def test_pausing_a_job_that_has_not_started_holds_it(state: JobState) -> None:
    assert transition(state, Event.PAUSE) == Outcome(JobState.HELD)


@pytest.mark.parametrize("event", [Event.START, Event.RESUME])
def test_releasing_a_held_job_queues_or_schedules_it(event: Event) -> None:
    assert transition(JobState.HELD, event).state is JobState.QUEUED
    assert transition(JobState.HELD, event, run_at_ahead=True).state is JobState.SCHEDULED


def test_user_actions_on_live_jobs_are_intents_for_the_worker() -> None:
    assert transition(JobState.RUNNING, Event.PAUSE) == Outcome(JobState.RUNNING, Control.PAUSE)
    assert transition(JobState.PAUSED, Event.RESUME) == Outcome(JobState.PAUSED, Control.RESUME)
    for state in LIVE:
        outcome = transition(state, Event.KILL)
        assert outcome.control is Control.KILL
        assert not outcome.immediate


@pytest.mark.parametrize("state", sorted(PENDING))
def test_killing_a_pending_job_is_immediate(state: JobState) -> None:
    assert transition(state, Event.KILL) == Outcome(JobState.KILLED)


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (JobState.RUNNING, Event.RESUME),
        (JobState.PAUSED, Event.PAUSE),
        (JobState.QUEUED, Event.START),
        (JobState.QUEUED, Event.RESUME),
        (JobState.HELD, Event.PAUSE),
        (JobState.RUNNING, Event.START),
        (JobState.HELD, Event.CLAIM),
        (JobState.SCHEDULED, Event.CLAIM),
    ],
)
def test_forbidden_moves_are_rejected(state: JobState, event: Event) -> None:
    with pytest.raises(IllegalTransition):
        transition(state, event)


def test_worker_events_lead_where_the_design_says() -> None:
    assert transition(JobState.QUEUED, Event.CLAIM).state is JobState.RUNNING
    assert transition(JobState.RUNNING, Event.PAUSED).state is JobState.PAUSED
    assert transition(JobState.PAUSED, Event.RESUMED).state is JobState.RUNNING
    assert transition(JobState.PAUSED, Event.KILLED).state is JobState.KILLED
    assert transition(JobState.RUNNING, Event.RETRY).state is JobState.SCHEDULED
    assert transition(JobState.RUNNING, Event.LOST).state is JobState.FAILED
    assert transition(JobState.SCHEDULED, Event.PROMOTE).state is JobState.QUEUED


def test_every_state_is_either_pending_live_or_terminal() -> None:
    assert set(JobState) == PENDING | LIVE | TERMINAL
    assert not PENDING & LIVE
    assert not LIVE & TERMINAL
    assert not PENDING & TERMINAL


def test_allowed_events_lists_what_transition_accepts() -> None:
    for state in JobState:
        for event in Event:
            accepted = event in allowed_events(state)
            try:
                transition(state, event)
            except IllegalTransition:
                assert not accepted
            else:
                assert accepted
    assert set(allowed_events(JobState.RUNNING)) >= {Event.PAUSE, Event.KILL}
    assert not set(allowed_events(JobState.SUCCEEDED)) & set(USER)


def test_initial_state() -> None:
    assert initial_state(hold=True, run_at_ahead=True) is JobState.HELD
    assert initial_state(hold=False, run_at_ahead=True) is JobState.SCHEDULED
    assert initial_state(hold=False, run_at_ahead=False) is JobState.QUEUED


def test_dependencies_move_waiting_jobs() -> None:
    assert transition(JobState.WAITING, Event.READY).state is JobState.QUEUED
    assert transition(JobState.WAITING, Event.READY, run_at_ahead=True).state is JobState.SCHEDULED
    assert transition(JobState.WAITING, Event.BLOCK).state is JobState.UPSTREAM_FAILED
    # only a restarted dependency reopens an upstream_failed job: it waits again
    assert transition(*REOPEN).state is JobState.WAITING
    assert transition(JobState.HELD, Event.START, deps_pending=True).state is JobState.WAITING
    assert initial_state(hold=False, run_at_ahead=False, deps_pending=True) is JobState.WAITING
    assert initial_state(hold=True, run_at_ahead=False, deps_failed=True) is (
        JobState.UPSTREAM_FAILED
    )
