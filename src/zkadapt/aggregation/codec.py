"""Trainable tensors <-> one flat float32 vector, at the edge of the aggregation math.

Aggregators, clipping, quantization and packing all work on a single 1-D vector (STYLE.md
rule 2). The codec fixes the layout once, from a reference state: tensors in the state's order,
each raveled in C order. Every party builds its codec from G(0), so every party lays out the
vector the same way.

Example:
    >>> import numpy as np
    >>> state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, np.float32)}
    >>> codec = FlatCodec(state)
    >>> codec.size
    8
    >>> vec = codec.flatten(state)
    >>> vec
    array([0., 1., 2., 3., 4., 5., 1., 1.], dtype=float32)
    >>> back = codec.unflatten(vec * 2)
    >>> list(back), back["w"].shape, back["b"].tolist()
    (['w', 'b'], (2, 3), [2.0, 2.0])
    >>> codec.flatten({"w": np.zeros((3, 2), np.float32), "b": np.ones(2, np.float32)})
    Traceback (most recent call last):
    ...
    ValueError: tensor 'w': expected shape (2, 3), got (3, 2)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Dtypes that survive a trip through float32 unchanged.
_EXACT_IN_FLOAT32 = (np.dtype(np.float32), np.dtype(np.float16))


class FlatCodec:
    """The fixed layout of a state dict's tensors inside one flat float32 vector.

    Args:
        state: reference state (tensor name -> float32 or float16 array); only the names,
            order, shapes and dtypes are kept, not the values.

    Raises:
        ValueError: the state is empty or holds a dtype that float32 cannot carry exactly.
    """

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        if not state:
            raise ValueError("a codec needs at least one tensor")
        self._names = tuple(state)
        self._shapes = {name: tuple(np.shape(state[name])) for name in self._names}
        self._dtypes = {name: np.asarray(state[name]).dtype for name in self._names}
        for name, dtype in self._dtypes.items():
            if dtype not in _EXACT_IN_FLOAT32:
                raise ValueError(f"tensor {name!r}: dtype {dtype} is not float32 or float16")
        self._offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for name in self._names:
            end = start + int(np.prod(self._shapes[name], dtype=np.int64))
            self._offsets[name] = (start, end)
            start = end
        self._size = start

    @property
    def size(self) -> int:
        """Length of the flat vector (total number of elements)."""
        return self._size

    @property
    def names(self) -> tuple[str, ...]:
        """Tensor names in layout order."""
        return self._names

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensor name -> shape, in layout order."""
        return dict(self._shapes)

    def flatten(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """Lay ``state`` out as one new float32 vector (the input's own order does not matter).

        Raises:
            ValueError: a tensor is missing, unexpected, or has another shape or dtype; the
                message names it.
        """
        extra = [name for name in state if name not in self._shapes]
        if extra:
            raise ValueError(f"tensor {extra[0]!r}: not in the codec's layout")
        vec = np.empty(self._size, dtype=np.float32)
        for name in self._names:
            if name not in state:
                raise ValueError(f"tensor {name!r}: missing from the state")
            array = np.asarray(state[name])
            if array.shape != self._shapes[name]:
                raise ValueError(
                    f"tensor {name!r}: expected shape {self._shapes[name]}, got {array.shape}"
                )
            if array.dtype != self._dtypes[name]:
                raise ValueError(
                    f"tensor {name!r}: expected dtype {self._dtypes[name]}, got {array.dtype}"
                )
            start, end = self._offsets[name]
            vec[start:end] = array.ravel()
        return vec

    def unflatten(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        """Cut a flat float32 vector back into fresh tensors with the recorded shapes and dtypes.

        Raises:
            ValueError: ``vec`` is not a 1-D float32 array of length :attr:`size`.
        """
        vec = np.asarray(vec)
        if vec.dtype != np.float32 or vec.shape != (self._size,):
            raise ValueError(
                f"expected a float32 vector of length {self._size}, got {vec.dtype} {vec.shape}"
            )
        state = {}
        for name in self._names:
            start, end = self._offsets[name]
            chunk = vec[start:end].reshape(self._shapes[name])
            state[name] = chunk.astype(self._dtypes[name], copy=True)
        return state
