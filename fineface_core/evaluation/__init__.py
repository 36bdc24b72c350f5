"""The FineFace paper's evaluation (Section 5) as one command, with the measurements the paper lacks:
``python -m fineface_core.evaluate`` (see docs/evaluation.md).

protocol: the jobs (prompt, AU vector, seed); generate: the images; measure: AUs, CLIP-I, identity;
metrics: the numbers from the measurements; report: CSV, tables, plots; folder: the output folder; run: all
of it in order; cli: the command line.

The edit protocol (``--protocol edit --photos DIR``: exact edits of faces the user has, fineface_core.editing):
edit_jobs: the photos (a seed each, from its name) and the targets built on each photo's reading (replay,
absolute, relative, neutral); edit_generate: the face's square, its source AUs, one inversion per photo and
the replays; edit_measure: each edit's AUs, identity, replay PSNR and pixels kept outside the face; edit_metrics:
gain, cross-talk, PSNR, pixels kept; edit_report: CSV, tables, plots; edit_run: all of it in order; edit_cli:
its options.

processes: the work divided over the processes of ``accelerate launch`` (fixed batches, the same results
from any number of processes)."""
