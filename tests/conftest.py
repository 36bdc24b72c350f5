# sys.path, offline hub and ComfyUI are set up by the plugin tests/support/pytest_comfy.py, which
# pyproject's addopts loads before collection.
