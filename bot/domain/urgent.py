""" "It's urgent" (issue 19): what a sender's note may be, and who a route sends it to."""

from __future__ import annotations

from dataclasses import dataclass

ME = "me"  # the route that sends urgent notes to the person themselves (a DM from the app)
NOT_PASSED_ON = "not_passed_on"  # in a recap: the sender's urgent note failed for good (no user id is lowercase)
MAX_NOTE = 2999  # "3,000+ characters" is refused; a plain_text section holds at most 3,000
NOTE_EVENT_TYPE = "offhours_urgent"  # message metadata on every urgent notice, to find it again after a timeout


@dataclass(frozen=True, slots=True)
class UrgentRoute:
    """Where a person's urgent notes go: `target` is a user id, or ME."""

    person: str
    target: str

    @property
    def to_self(self) -> bool:
        return self.target == ME

    @property
    def recipient(self) -> str:
        """The user id the notice is posted to."""
        return self.person if self.to_self else self.target


def note_problem(note: str) -> str | None:
    """Why a sender's note cannot be sent (None: it can)."""
    if not note.strip():
        return "Write a few words about what can't wait."
    if len(note) > MAX_NOTE:
        return f"Keep it under 3,000 characters (this one has {len(note):,})."
    if "\x00" in note:  # PostgreSQL text cannot hold NUL: refused here rather than failing the write
        return "The note contains a NUL character (\\0); remove it and try again."
    return None
