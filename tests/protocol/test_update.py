"""The plaintext update object: byte-reproducible across processes, readable by safetensors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from safetensors.numpy import load

from zkadapt.protocol.update import PlainUpdate

_MAKE = (
    "import sys, numpy as np; from zkadapt.protocol.update import PlainUpdate; "
    "d = np.linspace(-1, 1, 37, dtype=np.float32); "
    "sys.stdout.buffer.write(PlainUpdate('s' * 64, 3, 'carol', 1234, d).to_bytes())"
)


def test_the_same_update_gives_the_same_bytes_in_every_process() -> None:
    """A re-upload after a crash must not change the digest already posted on the channel."""
    runs = {
        subprocess.run([sys.executable, "-c", _MAKE], capture_output=True, check=True).stdout
        for _ in range(4)
    }
    here = PlainUpdate("s" * 64, 3, "carol", 1234, np.linspace(-1, 1, 37, dtype=np.float32))
    assert runs == {here.to_bytes()}


def test_the_object_is_a_safetensors_file_with_a_sorted_header() -> None:
    delta = np.arange(5, dtype=np.float32) - 2.5
    data = PlainUpdate("ab" * 32, 1, "alice", 7, delta).to_bytes()
    np.testing.assert_array_equal(load(data)["delta"], delta)
    length = int.from_bytes(data[:8], "little")
    assert length % 8 == 0 and len(data) == 8 + length + delta.nbytes
    header = data[8 : 8 + length].rstrip(b" ")
    assert header.startswith(b'{"__metadata__":{"format":"zkadapt-update/plain-v1","n_samples":"7"')
    again = PlainUpdate.from_bytes(data)
    assert (again.session, again.round, again.party, again.n_samples) == ("ab" * 32, 1, "alice", 7)
