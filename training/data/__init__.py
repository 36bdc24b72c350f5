"""Training data: the generic format (a folder of images + metadata.jsonl / .csv with file, caption
and the 12 AU intensities) and the commands that build it from DISFA and AffectNet."""
