"""Login throttling: per account and per client address, with exponential back-off.

A small in-process limiter (no dependency): each key (`user:NAME`, `addr:IP`) counts its failed
logins. After `free` failures in a row, every further failure blocks the key for
`base × 2^(failures − free)` seconds (at most `cap`); while a key is blocked, or while one attempt
of a failing key is still being checked, new attempts are refused at once (429) — before any
password is hashed, so a flood of bad logins costs almost nothing. A success clears the account's
key; an address's key is forgotten only after `forget_after` seconds without a failure, so an
attacker cannot reset it by logging in to an account of their own between guesses.

The state lives in each server process (with `--workers N` each worker keeps its own); the
database's temporary lock (`security.MAX_FAILED_LOGINS`) is shared by all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _State:
    failures: int = 0
    blocked_until: float = 0.0
    in_flight: int = 0
    last_failure: float = 0.0


@dataclass(frozen=True)
class Rule:
    free: int  # failures allowed before back-off starts
    base: float  # seconds of the first back-off
    cap: float  # longest back-off
    forget_after: float  # a key quiet this long starts afresh


ACCOUNT_RULE = Rule(free=3, base=1.0, cap=60.0, forget_after=900.0)
ADDRESS_RULE = Rule(free=10, base=1.0, cap=300.0, forget_after=900.0)
MAX_KEYS = 100_000


@dataclass
class Throttle:
    account: Rule = ACCOUNT_RULE
    address: Rule = ADDRESS_RULE
    clock: Callable[[], float] = time.monotonic
    _states: dict[str, _State] = field(default_factory=dict)
    _rejected: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _rule(self, key: str) -> Rule:
        return self.account if key.startswith("user:") else self.address

    def _state(self, key: str, now: float) -> _State:
        state = self._states.get(key)
        if state is not None and state.in_flight == 0 and now - state.last_failure > self._rule(key).forget_after:
            state = None
        if state is None:
            if len(self._states) >= MAX_KEYS:
                self._sweep(now)
            state = self._states[key] = _State()
        return state

    def _sweep(self, now: float) -> None:
        stale = [
            key
            for key, state in self._states.items()
            if state.in_flight == 0 and now - state.last_failure > self._rule(key).forget_after
        ]
        for key in stale:
            del self._states[key]
        if len(self._states) >= MAX_KEYS:  # still full: drop the addresses' memory rather than grow
            self._states = {key: state for key, state in self._states.items() if key.startswith("user:")}

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{username.lower()}", f"addr:{address}"

    def admit(self, username: str, address: str) -> float:
        """0.0: the attempt may go ahead (call `done` after it); else the seconds to wait."""
        now = self.clock()
        with self._lock:
            states = [self._state(key, now) for key in self.keys(username, address)]
            wait = 0.0
            for key, state in zip(self.keys(username, address), states, strict=True):
                rule = self._rule(key)
                if state.blocked_until > now:
                    wait = max(wait, state.blocked_until - now)
                elif state.failures >= rule.free and state.in_flight:
                    wait = max(wait, rule.base)  # a failing key: one attempt at a time
            if wait:
                pair = (username[:64], address)
                self._rejected[pair] = self._rejected.get(pair, 0) + 1
                return wait
            for state in states:
                state.in_flight += 1
            return 0.0

    def done(self, username: str, address: str, *, success: bool) -> float:
        """Record the outcome of an admitted attempt; returns the back-off now imposed (0.0: none)."""
        now = self.clock()
        imposed = 0.0
        with self._lock:
            for key in self.keys(username, address):
                state = self._state(key, now)
                state.in_flight = max(0, state.in_flight - 1)
                if success:
                    if key.startswith("user:"):
                        state.failures, state.blocked_until = 0, 0.0
                    continue
                rule = self._rule(key)
                state.failures += 1
                state.last_failure = now
                if state.failures >= rule.free:
                    delay = min(rule.cap, rule.base * 2 ** (state.failures - rule.free))
                    state.blocked_until = max(state.blocked_until, now + delay)
                    imposed = max(imposed, delay)
        return imposed

    def release(self, username: str, address: str) -> None:
        """An admitted attempt that ended without a verdict (an error): free its slot."""
        now = self.clock()
        with self._lock:
            for key in self.keys(username, address):
                state = self._state(key, now)
                state.in_flight = max(0, state.in_flight - 1)

    def clear_account(self, username: str) -> None:
        """A supervisor's unlock lifts the account's back-off too (in this process)."""
        with self._lock:
            self._states.pop(f"user:{username.lower()}", None)

    def take_rejected(self) -> dict[tuple[str, str], int]:
        """Attempts refused since the last call, by (username tried, address): for the audit log."""
        with self._lock:
            rejected, self._rejected = self._rejected, {}
        return rejected
