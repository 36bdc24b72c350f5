"""Files on disk, read without running code and written whole or not at all.

safe_load: tensors from safetensors and pickles without executing them; tensor_checks: the check every
tensor read passes (dtype, finiteness); safe_write: the one atomic write, checked output paths,
writable folders; digest: a file's sha256; folder_walk:
model folders full of symlinks, each real folder once."""
