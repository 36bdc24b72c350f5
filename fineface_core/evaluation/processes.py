"""The evaluation spread over processes: ``accelerate launch --multi_gpu --num_processes N [--num_machines M ...]
-m fineface_core.evaluate ...`` (or ``torchrun --nproc_per_node N -m ...``; on a machine without GPUs the
processes join over gloo). Without a launcher it is one process and accelerate is not imported.

The work is cut into fixed batches (of ``--batch-size`` jobs, in the protocol's order; for the edit protocol,
photos) that do not depend on how many processes there are or on what a folder already holds; process k takes
batches k, k + N, k + 2N, ... Every image has its own seed and a batch is always made whole (only the missing
files are written), so an image, its record and the merged table are the same from one process or from many,
and a folder begun with one number of processes is resumed with any other. Files go straight to their place
in the shared output folder (written atomically); the main process writes the settings before the others start,
and the reports once all have finished.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
LAUNCH_VARIABLES = ("WORLD_SIZE", "ACCELERATE_NUM_PROCESSES")  # set by torchrun / accelerate launch


@dataclass(frozen=True)
class Processes:
    index: int = 0
    count: int = 1
    barrier: Callable[[], None] = lambda: None
    device: str | None = None  # this process' device under a launcher (each GPU its process), else None

    @property
    def main(self) -> bool:
        return self.index == 0

    def wait(self):
        """Every process reaches this point before any goes on."""
        if self.count > 1:
            self.barrier()

    def batches(self, items: Sequence[T], batch_size: int) -> list[list[T]]:
        """This process' share of ``items`` cut into the fixed batches."""
        every = [list(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]
        return every[self.index::self.count]

    def share(self, items: Sequence[T]) -> list[T]:
        """This process' share of whole units (photos): every count-th from its index."""
        return list(items[self.index::self.count])


def launched() -> bool:
    return any(int(os.environ.get(v, "1") or 1) > 1 for v in LAUNCH_VARIABLES)


def current() -> Processes:
    """The processes of this run: accelerate's when launched with more than one, else this one alone."""
    if not launched():
        return Processes()
    import torch
    from accelerate import PartialState

    # without cpu=True accelerate leaves CPU processes apart (each "0 of 1"); with it they join over gloo
    cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    state = PartialState(cpu=cpu)
    if state.num_processes < 2:
        from ..errors import FineFaceError

        raise FineFaceError("launched as several processes, but accelerate did not join them into one group; on "
                            "a machine without GPUs launch with `accelerate launch --multi_gpu --num_processes N` "
                            "(gloo) or `torchrun --nproc_per_node N`")
    device = None if state.device.type == "cpu" else str(state.device)
    return Processes(state.process_index, state.num_processes, state.wait_for_everyone, device)
