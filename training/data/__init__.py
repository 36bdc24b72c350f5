"""Training data: the generic format (a folder of images + metadata.jsonl / .csv with file, caption
and the 12 AU intensities; ``generic.py``), its preparation from DISFA (``disfa.py``) and AffectNet
with LibreFace AUs (``affectnet.py``) with the paper's filters and corrections, merging folders
(``merge.py``), annotating any folder of face photos (``annotate.py``: faces, LibreFace AUs, captions, in shards;
several processes), and ``python -m training.data`` (``cli.py``). See training/README.md, "Data"."""
