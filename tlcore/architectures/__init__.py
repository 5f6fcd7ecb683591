"""Framework-neutral descriptions of the architectures that several backends build natively.

A module here holds what every backend must agree on for one architecture
(block table, canonical layer names and groups, padding rule, reference
weights and their key names) in plain Python, so that each backend only
writes the layers in its own framework.

    >>> from tlcore.architectures import efficientnet_lite
    >>> efficientnet_lite.group_of("block2a_dwconv")
    'stage2'
"""

from __future__ import annotations

from tlcore.architectures import efficientnet_lite

__all__ = ["efficientnet_lite"]
