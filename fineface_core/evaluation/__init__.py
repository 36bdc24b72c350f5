"""The FineFace paper's evaluation (Section 5) as one command, with the measurements the paper lacks:
``python -m fineface_core.evaluate`` (see docs/evaluation.md).

protocol: the jobs (prompt, AU vector, seed); generate: the images; measure: AUs, CLIP-I, identity;
metrics: the numbers from the measurements; report: CSV, tables, plots; folder: the output folder; run: all
of it in order; cli: the command line."""
