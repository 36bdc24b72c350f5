"""Every FineFace weight-file format, apart from the math (the role of diffusers' ``loaders/``).

loading: one entry point for whatever a user points at (a single file, an official release folder);
single_file: this project's one-file ``.safetensors`` format, read and written; metadata: that file's
metadata, field by field; releases: the official releases' table (files, labels, hub); official: their files, read
without renaming; foreign: other tools' files, named from their tensor names; lora_layout: what a
diffusers / peft LoRA file is, from its keys alone; cli: ``python -m fineface_core convert | inspect``."""
