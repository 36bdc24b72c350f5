// Drag speed of the AU inputs where nodes are Vue components ("Nodes 2.0"): those draw their own number inputs,
// not the canvas widget au_drag.js slows. Front end 1.58's (ScrubableNumberInput) scrubs one step per 10 px
// (0.5 per 10 px) over a transparent layer on the input; on the AU inputs the pack takes that drag over: one unit
// per 40 px, as on the canvas, and a click without a move still opens the text field. Front end 1.35's (PrimeVue
// InputNumber) has +/- buttons and no drag, so there is nothing to slow.
import { app } from "../../scripts/app.js";
import { AU_INPUTS, PER_PX } from "./au_drag.js";

const SCRUB_LAYER = ".cursor-ew-resize";
const CLICK_PX = 3; // a press that moves less is a click: the front end opens the input's text field

/** The pack's AU input under a press on a scrub layer: its node and widget, or null. */
function auInputAt(target) {
    const layer = target instanceof Element ? target.closest(SCRUB_LAYER) : null;
    const named = layer?.closest("[aria-label]");
    const nodeEl = layer?.closest("[data-node-id]");
    if (!named || !nodeEl) return null;
    const id = nodeEl.dataset.nodeId;
    const node = app.graph?.getNodeById(id) ?? app.graph?.getNodeById(Number(id));
    const name = named.getAttribute("aria-label");
    if (!node || !AU_INPUTS[node.type]?.(name)) return null;
    const widget = node.widgets?.find((w) => w.name === name && w.type === "number");
    return widget ? { node, widget } : null;
}

function setValue({ node, widget }, value, e) {
    const { min, max } = widget.options ?? {};
    const v = Math.min(max ?? Infinity, Math.max(min ?? -Infinity, value));
    if (widget.setValue) widget.setValue(v, { e, node, canvas: app.canvas });
    else widget.value = v;
    node.setDirtyCanvas?.(true, true);
}

// Capture phase, on the document: the press never reaches the front end's own scrub.
function onPress(e) {
    const hit = e.button === 0 && auInputAt(e.target);
    if (!hit) return;
    e.stopPropagation();
    const startX = e.clientX, start = Number(hit.widget.value);
    let moved = false;
    const move = (m) => {
        if (!moved && Math.abs(m.clientX - startX) < CLICK_PX) return;
        moved = true;
        m.stopPropagation();
        setValue(hit, start + (m.clientX - startX) * PER_PX, m);
    };
    const release = (u) => {
        window.removeEventListener("pointermove", move, true);
        window.removeEventListener("pointerup", release, true);
        if (moved) u.stopPropagation(); // a drag, not a click: the text field stays closed
    };
    window.addEventListener("pointermove", move, true);
    window.addEventListener("pointerup", release, true);
}

app.registerExtension({
    name: "FineFace.AUDragVue",
    setup() {
        document.addEventListener("pointerdown", onPress, true);
    },
});
