"""A read-only sequence whose items are built on first use, for entries kept as raw data.

Decoded stats keep their entries in the form the merge wants (arrays, validated dicts);
code that wants them one by one (tests, the plain merge, a worker's resend) indexes,
iterates or compares them, and only then are the item objects built, once.
:class:`LazySequence` is that sequence: a subclass says how many items there are without
building them (``__len__``) and how to build them all (``_build``).

Imports: the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar, overload

T = TypeVar("T")

__all__ = ["LazySequence"]


class LazySequence(Sequence[T], Generic[T]):
    """A sequence of items built by :meth:`_build` the first time one is wanted."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        """Start with nothing built."""
        self._items: tuple[T, ...] | None = None

    def _build(self) -> tuple[T, ...]:
        """Every item, in order (called once)."""
        raise NotImplementedError

    def _all(self) -> tuple[T, ...]:
        if self._items is None:
            self._items = self._build()
        return self._items

    def __len__(self) -> int:
        """Number of items (a subclass answers without building them)."""
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        """The item (or items) at ``index``."""
        return self._all()[index]

    def __iter__(self) -> Iterator[T]:
        """The items in order."""
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence holding the same items."""
        if not isinstance(other, Sequence):
            return NotImplemented
        return self._all() == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # compared by value, like the tuple it stands for

    def __repr__(self) -> str:
        """A short representation."""
        return f"{type(self).__name__}({len(self)} entries)"
