"""The seed of each review: from the batch seed and the review's ``review_id`` alone.

Not from the review's position, the chunk it falls in or the worker that fits it: an interrupted
batch resumed, a batch run on another cluster, or a review moved within the table gets the same
numbers. ``python -m metak fit --seed <review_seed(seed, review_id)>`` on the review alone
reproduces its rows (its analyses get ``seed + position`` in the analysis file, as in ``fit``).
"""

from __future__ import annotations

import hashlib

__all__ = ["review_seed", "SEED_BITS"]

# Seeds stay within the range of ``fit --seed`` (0 to 2^32 - 1).
SEED_BITS = 32


def review_seed(batch_seed: int, review_id: str) -> int:
    """``BLAKE2b(batch seed, review_id)`` as a whole number in [0, 2^32).

    Parameters
    ----------
    batch_seed : int
        The batch's ``--seed``.
    review_id : str
        The review's ``review_id`` as written in the table.

    Returns
    -------
    int
    """
    digest = hashlib.blake2b(
        f"{int(batch_seed)}\x1f{review_id}".encode(), digest_size=SEED_BITS // 8
    ).digest()
    return int.from_bytes(digest, "big")
