"""Seeds derived from the session id, so every party draws the same numbers without talking.

G(0), the data partition and each party's shuffling order all come from here: the seed's
script started each party from its own random model, which cost accuracy (DESIGN.md section 3).
"""

from __future__ import annotations

import hashlib


def derive_seed(session_id: str, *labels: object) -> int:
    """A 63-bit seed from the session id and labels: the same on every machine.

    >>> derive_seed("ab" * 32, "init") == derive_seed("ab" * 32, "init")
    True
    >>> derive_seed("ab" * 32, "train", 1, "alice") != derive_seed("ab" * 32, "train", 2, "alice")
    True
    """
    text = "/".join([session_id, *map(str, labels)]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1
