"""Which key may speak for which worker: the identity-to-key binding of a CURVE master.

Responsibility: the decision, for each frame a CURVE master receives, whether the key it
came under (its ``User-Id``, the Z85 public key the ZAP handler admitted) may speak for
the worker identity it names. The first frame of an identity binds that identity to its
key; from then on a frame under the identity from any other key is refused
(``wrong_key``: even an allowed peer cannot act as another worker), and a frame under a
key that is no longer on the allow-list is refused (``revoked_key``: a revoked worker's
open connection goes quiet, and the worker goes missing as a lost one does). Bindings of
identities the master has forgotten are pruned. Pure: no sockets; the caller passes ``now``.

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from horde.protocol.security import fingerprint

PRUNE_GRACE = 10.0
"""Seconds a binding outlives not being registered (see :meth:`KeyGate.prune`)."""
WRONG_KEY = "wrong_key"
REVOKED_KEY = "revoked_key"


class KeyGate:
    """Binds identities to keys and judges frames; ``allowed`` gives the allow-list now."""

    def __init__(self, allowed: Callable[[], frozenset[str]]) -> None:
        self._allowed = allowed
        self._keys: dict[bytes, str] = {}
        self._bound_at: dict[bytes, float] = {}
        self.bound: list[tuple[bytes, str]] = []
        """Bindings made since the caller last emptied this list (to log them)."""

    def judge(self, identity: bytes, key: str, now: float) -> str | None:
        """None if the frame may go on, else why not (:data:`WRONG_KEY`, :data:`REVOKED_KEY`)."""
        if key not in self._allowed():
            return REVOKED_KEY
        bound = self._keys.get(identity)
        if bound is None:
            self._keys[identity] = key
            self._bound_at[identity] = now
            self.bound.append((identity, key))
            return None
        return None if bound == key else WRONG_KEY

    def key_of(self, identity: str) -> str | None:
        """The fingerprint of the key ``identity`` is bound to, or None."""
        key = self._keys.get(identity.encode())
        return None if key is None else fingerprint(key)

    def prune(self, known: Container[str], now: float) -> None:
        """Forget the bindings of identities not in ``known`` (workers the master forgot),
        but not those made in the last :data:`PRUNE_GRACE` seconds: a new worker's first
        frames are bound before its registration is handled."""
        stale = [
            i
            for i in self._keys
            if now - self._bound_at[i] > PRUNE_GRACE and i.decode("utf-8", "replace") not in known
        ]
        for identity in stale:
            del self._keys[identity]
            del self._bound_at[identity]

    def __len__(self) -> int:
        return len(self._keys)
