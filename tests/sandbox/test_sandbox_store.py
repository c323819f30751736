"""Pure token and session rules (time passed in, no clock)."""

from __future__ import annotations

import re

import pytest

from doctor.sandbox.config import FAULTS, FaultError, SandboxConfig, check_faults, parse_fault
from doctor.sandbox.store import (
    KEEP_FINISHED,
    Store,
    TokenGrant,
    TokenRequestError,
    parse_token_query,
)


def q(**kw: str) -> dict[str, list[str]]:
    return {k: [v] for k, v in kw.items()}


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({}, "expires_in_seconds"),
        (q(expires_in_seconds="0"), "expires_in_seconds"),
        (q(expires_in_seconds="601"), "expires_in_seconds"),
        (q(expires_in_seconds="ten"), "expires_in_seconds"),
        (
            q(expires_in_seconds="60", max_session_duration_seconds="59"),
            "max_session_duration_seconds",
        ),
        (
            q(expires_in_seconds="60", max_session_duration_seconds="10801"),
            "max_session_duration_seconds",
        ),
        (
            q(expires_in_seconds="60", max_session_duration_seconds="1.5"),
            "max_session_duration_seconds",
        ),
    ],
)
def test_token_parameters_rejected(query: dict[str, list[str]], param: str) -> None:
    errs = parse_token_query(query)
    assert isinstance(errs, list) and len(errs) == 1
    err = errs[0]
    assert isinstance(err, TokenRequestError) and err.status == 400 and err.param == param
    # field-facts §1: the same problem as the live FastAPI validation entry
    assert err.item is not None and err.item["loc"] == ["query", param]
    assert err.item["type"] in ("missing", "greater_than_equal", "less_than_equal", "int_parsing")


def test_every_token_parameter_problem_is_listed() -> None:
    errs = parse_token_query(q(expires_in_seconds="0", max_session_duration_seconds="30"))
    assert isinstance(errs, list)
    assert [(e.item or {}).get("msg") for e in errs] == [
        "Input should be greater than or equal to 1",
        "Input should be greater than or equal to 60",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (q(expires_in_seconds="1"), (1, 10800)),
        (q(expires_in_seconds="600"), (600, 10800)),
        (q(expires_in_seconds="60", max_session_duration_seconds="60"), (60, 60)),
        (q(expires_in_seconds="60", max_session_duration_seconds="10800"), (60, 10800)),
    ],
)
def test_token_parameters_accepted(query: dict[str, list[str]], expected: tuple[int, int]) -> None:
    assert parse_token_query(query) == expected


def test_tokens_are_single_use_and_expire() -> None:
    store = Store(grace_s=30)
    grant = store.mint("k", 10, 60, now=100.0)
    assert store.redeem("nope", 100.0) == "unknown"
    assert isinstance(store.redeem(grant.token, 110.0), TokenGrant)  # at the deadline: fine
    assert store.redeem(grant.token, 110.0) == "used"
    late = store.mint("k", 10, 60, now=100.0)
    assert store.redeem(late.token, 110.01) == "expired"


def test_lax_tokens_may_be_reused() -> None:
    store = Store(grace_s=30, single_use_tokens=False)
    grant = store.mint("k", 10, 60, now=0.0)
    assert isinstance(store.redeem(grant.token, 1.0), TokenGrant)
    assert isinstance(store.redeem(grant.token, 2.0), TokenGrant)
    assert grant.redeemed == 2


def test_session_ids_look_like_the_service() -> None:
    store = Store(grace_s=30)
    s = store.create("k", 0.0, 100.0, conn=1)
    assert re.fullmatch(r"sess_[0-9a-f]{32}", s.id)
    assert s.cap_deadline == 100.0


def test_resume_within_and_after_grace() -> None:
    store = Store(grace_s=5)
    s = store.create("k", 0.0, 1000.0, conn=1)
    store.detach(s.id, now=10.0)
    assert store.resume(s.id, "k", now=15.0, conn=2) is s and s.attached == 2
    store.detach(s.id, now=20.0)
    assert store.resume(s.id, "k", now=25.01, conn=3) == "session_not_found"
    assert s.id not in store.sessions


def test_resume_forbidden_for_another_key_and_unknown_id() -> None:
    store = Store(grace_s=5)
    s = store.create("k1", 0.0, 1000.0, conn=1)
    store.detach(s.id, now=1.0)
    assert store.resume(s.id, "k2", now=2.0, conn=2) == "session_forbidden"
    assert store.resume("sess_" + "0" * 32, "k1", now=2.0, conn=2) == "session_not_found"
    assert store.resume(s.id, "k1", now=2.0, conn=2) is s


def test_ended_sessions_cannot_resume() -> None:
    store = Store(grace_s=30)
    s = store.create("k", 0.0, 1000.0, conn=1)
    store.end(s.id)
    store.detach(s.id, now=1.0)  # harmless after the end
    assert store.resume(s.id, "k", now=1.0, conn=2) == "session_not_found"


def test_detached_session_past_its_cap_is_gone() -> None:
    store = Store(grace_s=30)
    s = store.create("k", 0.0, 10.0, conn=1)
    store.detach(s.id, now=9.0)
    assert store.expire(10.0) == [s.id]


def test_reissue_moves_the_session_to_a_new_id_and_forgets_the_old() -> None:
    store = Store(grace_s=30)
    s = store.create("k", 0.0, 1000.0, conn=1)
    s.config = {"system_prompt": "kept"}
    old_id = s.id
    store.detach(old_id, now=1.0)
    assert store.resume(old_id, "k", now=2.0, conn=2) is s
    again = store.reissue(old_id)
    assert again is s and re.fullmatch(r"sess_[0-9a-f]{32}", s.id) and s.id != old_id
    assert (s.owner_key, s.config, s.attached) == ("k", {"system_prompt": "kept"}, 2)
    assert list(store.sessions) == [s.id]
    store.detach(s.id, now=3.0)
    assert store.resume(old_id, "k", now=4.0, conn=3) == "session_not_found"
    assert store.resume(s.id, "k", now=4.0, conn=3) is s


def test_attached_sessions_never_expire_by_grace() -> None:
    store = Store(grace_s=1)
    s = store.create("k", 0.0, 1000.0, conn=1)
    assert store.expire(500.0) == []
    assert s.id in store.sessions


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_every_fault_parses_with_its_default(name: str) -> None:
    assert parse_fault(name) == (name, FAULTS[name][0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("slow-ready=2.5", ("slow-ready", 2.5)),
        (" drop-after-ready=0 ", ("drop-after-ready", 0.0)),
        ("token-rate-limited=5", ("token-rate-limited", 5.0)),
        ("at-capacity-after=0", ("at-capacity-after", 0.0)),
    ],
)
def test_fault_parameters(text: str, expected: tuple[str, float]) -> None:
    assert parse_fault(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "nope",
        "slow-ready=abc",
        "slow-ready=-1",
        "slow-ready=inf",
        "slow-ready=nan",
        "internal-error=3",
        "resume-new-id=1",
        "close-without-frame=0",
        "at-capacity-after=1.5",
        "at-capacity-after=-1",
    ],
)
def test_bad_faults(text: str) -> None:
    with pytest.raises(FaultError):
        parse_fault(text)


def test_config_validates_switches_and_faults() -> None:
    assert check_faults({"slow-ready": None}) == {"slow-ready": 3.0}
    with pytest.raises(FaultError):
        SandboxConfig(faults={"bogus": None})
    for bad in (
        {"auth_failure": "x"},
        {"expired_token": "x"},
        {"reply_done_status": "x"},
        {"token_error_body": "x"},
        {"retry_after_form": "x"},
        {"grace_s": -1},
        {"port": 70000},
    ):
        with pytest.raises(ValueError):
            SandboxConfig(**bad)  # type: ignore[arg-type]
    cfg = SandboxConfig(faults={"drop-after-ready": 0.25})
    assert cfg.fault("drop-after-ready") and cfg.fault_s("drop-after-ready") == 0.25
    assert not cfg.fault("slow-ready")


def test_ended_sessions_are_kept_for_history_and_bounded() -> None:
    store = Store(30.0)
    ids = [store.create("k", 0.0, 60.0, 1).id for _ in range(KEEP_FINISHED + 5)]
    for sid in ids:
        store.end(sid)
    assert len(store.finished) == KEEP_FINISHED
    assert ids[0] not in store.finished and ids[-1] in store.finished  # the oldest went
    assert store.finished[ids[-1]].ended and not store.sessions
