"""Compile once, sample many: one compiled model per model structure in each process.

Compiling a PyMC model for nutpie (PyTensor graph rewriting, numba) costs seconds; sampling a
meta-analysis of 100 studies takes a tenth of that. A process that fits many analyses — a
worker of ``metak batch`` or ``fit --jobs``, or a notebook calling :func:`metak.fit` again —
keeps every compiled model here, keyed by its structure (:attr:`metak.models.SharedModel.key`),
and gives it the next analysis' data with nutpie's ``with_data`` (the model's ``pm.Data``
containers) instead of compiling again. The ``pm.Model`` keeps the same data too: PyMC's initial
point and prior draws read it. Both routes — a fresh compilation and a reused one — sample the
same compiled function with the same data, so a result does not depend on what the process
fitted before (a test compares them).

The cache lives as long as the process; it holds at most :data:`CAPACITY` structures (the least
recently used go first). A lock per structure keeps two threads from swapping data into one
model at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import xarray as xr

from metak.fitting.mcmc.sampling import compile_model
from metak.fitting.phases import PhaseClock
from metak.models import ModelParts, SharedModel
from metak.models.common import DATA_PACK
from metak.models.univariate import MODERATOR_DIM, STUDY_DIM

__all__ = ["CompiledModels", "PROCESS_MODELS", "CAPACITY", "ModelInUse", "trim_padding"]

# Structures kept per process: a batch rarely has more than a few (model kind x row bucket x
# prior families), and each compiled model holds a few MB of numba code.
CAPACITY = 32


@dataclass
class _Entry:
    model: object
    parts: ModelParts
    compiled: object
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class ModelInUse:
    """A model with one analysis' data in it: sample ``compiled``, draw priors from ``model``.

    ``reused`` says whether the compiled model came from the cache (no compilation).
    """

    model: object
    parts: ModelParts
    compiled: object
    reused: bool


class CompiledModels:
    """Compiled models by structure; :meth:`use` hands one out with an analysis' data in it."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.compilations = 0  # models compiled by this cache (for tests and benchmarks)
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every compiled model (the next analysis of each structure compiles again)."""
        with self._lock:
            self._entries.clear()

    def _entry(self, shared: SharedModel, clock: PhaseClock) -> tuple[_Entry, bool]:
        with self._lock:
            entry = self._entries.get(shared.key)
            if entry is not None:
                self._entries.move_to_end(shared.key)
                return entry, True
        model, parts = shared.build()
        with clock("compile"):
            compiled = compile_model(model)
        entry = _Entry(model, parts, compiled)
        with self._lock:
            self.compilations += 1
            entry = self._entries.setdefault(shared.key, entry)
            self._entries.move_to_end(shared.key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return entry, False

    @contextmanager
    def use(self, shared: SharedModel, clock: PhaseClock) -> Iterator[ModelInUse]:
        """The compiled model of ``shared``'s structure holding ``shared``'s data.

        Compiles it (timed as the ``compile`` phase of ``clock``) only when this process has no
        model of that structure yet. The model is this caller's until the block ends.
        """
        entry, reused = self._entry(shared, clock)
        with entry.lock:
            # All the data are one pm.Data (metak.models.common.DataPack): this analysis' values
            # laid out as the compiled model's. PyMC's initial point and prior draws read the
            # model's own data container.
            packed = entry.parts.data_pack.pack(shared.values)
            entry.model.set_data(DATA_PACK, packed)
            names = {var.name for var in entry.compiled.shared_var_keys}
            compiled = entry.compiled.with_data(
                **({DATA_PACK: packed} if DATA_PACK in names else {})
            )
            yield ModelInUse(entry.model, entry.parts, compiled, reused)


# The compiled models of this process (a batch worker keeps them for all its reviews).
PROCESS_MODELS = CompiledModels()


def trim_padding(dataset: xr.Dataset, shared: SharedModel) -> xr.Dataset:
    """Draws of a padded model cut to the analysis' own rows, with its labels as coordinates."""
    if STUDY_DIM in dataset.dims:
        dataset = dataset.isel({STUDY_DIM: slice(0, shared.rows)})
        dataset = dataset.assign_coords({STUDY_DIM: list(shared.labels)})
    if MODERATOR_DIM in dataset.dims:
        dataset = dataset.assign_coords({MODERATOR_DIM: list(shared.moderators)})
    return dataset
