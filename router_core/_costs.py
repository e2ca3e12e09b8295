"""Token and cost estimates used before a model is called.

The estimate is deliberately cheap (it runs on every decision): about four characters per
token for English text, which is what OpenAI documents as a rule of thumb. Actual usage comes
back from the provider and is what the service bills.
"""

from __future__ import annotations

__all__ = ["CHARS_PER_TOKEN", "estimate_cost", "estimate_tokens"]

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Estimated token count of ``text`` (at least 1)."""
    return max(1, (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


def estimate_cost(
    input_tokens: int,
    output_tokens: int,
    input_price_per_mtok: float,
    output_price_per_mtok: float,
) -> float:
    """USD cost of one call given token counts and prices per million tokens."""
    return (input_tokens * input_price_per_mtok + output_tokens * output_price_per_mtok) / 1e6
