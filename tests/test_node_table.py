"""nodes/__init__.py's one table of nodes (class id, class, display name) and ComfyUI's two maps made from it."""
from tests.support import comfy_env


def test_comfyuis_two_maps_hold_the_table_s_rows_each_once(registry):
    table = comfy_env.pack_module("nodes").NODES
    ids = [class_id for class_id, _, _ in table]
    assert len(ids) == len(set(ids)), "a class id is in the table twice: the later row would hide the earlier"
    for class_id, cls, display in table:
        assert registry.NODE_CLASS_MAPPINGS[class_id] is cls
        assert registry.NODE_DISPLAY_NAME_MAPPINGS[class_id] == display
    ours = {k for k, v in registry.NODE_CLASS_MAPPINGS.items() if v.__module__.startswith(table[0][1].__module__.rsplit(".", 1)[0])}
    assert ours == set(ids)  # no node registered outside the table
