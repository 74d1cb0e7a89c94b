"""Where the generator used to live: it is Order domain code, now ``eventlog.orders.generate``.

Kept so that ``from eventlog.generate import generate`` keeps working.
"""

from __future__ import annotations

from eventlog.orders.generate import (
    CATALOGUE,
    GenerateSummary,
    generate,
    note_text,
    price_in,
)

__all__ = ["CATALOGUE", "GenerateSummary", "generate", "note_text", "price_in"]
