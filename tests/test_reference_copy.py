"""The in-repo copy of the reference values is byte-identical to the shared originals."""

from __future__ import annotations

import pytest

from tests.conftest import REFERENCE, SHARED_REFERENCE


def test_copy_matches_shared_originals():
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("the shared reference directory is not beside this checkout")
    originals = sorted(p.name for p in SHARED_REFERENCE.iterdir() if p.is_file())
    assert originals, "shared reference directory is empty"
    for name in originals:
        assert (REFERENCE / name).read_bytes() == (SHARED_REFERENCE / name).read_bytes(), name
