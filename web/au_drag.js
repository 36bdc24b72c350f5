// Drag speed of the AU intensity inputs (AU Vector's sliders, AU Sweep's start and end): one unit per 40 px
// dragged, so that 0..5 is easy to set by hand, while an arrow click keeps the input's step (0.5). The front ends
// move a number widget by its step per pixel (0.5/px: 0 to 10 in 20 px); only these inputs are changed.
// Canvas nodes: the 2024 front end handles widget drags in LGraphCanvas.processNodeWidgets, the newer ones in
// the widget's onDrag. Vue nodes draw their own number inputs: see au_drag_vue.js.
import { app } from "../../scripts/app.js";

export const PER_PX = 0.025;
export const AU_INPUTS = {
    FineFaceAUVector: (name) => /^AU\d+$/.test(name),
    FineFaceAUSweep: (name) => name === "start" || name === "end",
};
const ARROW = 40; // px at each end of a number widget where the front ends step instead of dragging

/** The value a drag of ``dx`` px gives. The front ends round a float input to its precision after each move, which
 * would swallow moves under a rounding step: the unrounded value is kept while the input shows its rounding. */
export function dragged(widget, dx) {
    const kept = widget.finefaceDrag;
    const tolerance = (widget.options?.round || 0) / 2 + 1e-9;
    const start = kept && Math.abs(kept.exact - widget.value) <= tolerance ? kept.exact : Number(widget.value);
    const { min, max } = widget.options ?? {};
    let value = start + dx * PER_PX;
    if (min != null) value = Math.max(min, value);
    if (max != null) value = Math.min(max, value);
    widget.finefaceDrag = { exact: value };
    return value;
}

const onArrow = (x, width) => (x < ARROW || x > width - ARROW) && x > -3 && x < width + 3;

// Front ends from 1.2x: the widget is a NumberWidget whose onDrag moves it; this one's moves at PER_PX.
function slowDrag(widget) {
    widget.onDrag = function ({ e, node, canvas }) {
        if (onArrow(e.canvasX - node.pos[0], this.width || node.size[0])) return;
        this.setValue(dragged(this, e.deltaX ?? 0), { e, node, canvas });
    };
}

// The 2024 front end: a pointer move on the widget being dragged, handled as its own number branch does it
// (clamped, the input's callback rounds it, the node is told), at PER_PX.
function wrapLegacyCanvas() {
    const proto = window.LGraphCanvas?.prototype;
    if (!proto?.processNodeWidgets || proto.finefaceDrag) return;
    proto.finefaceDrag = true;
    const process = proto.processNodeWidgets;
    proto.processNodeWidgets = function (node, pos, event, active) {
        const moving = event?.type === `${window.LiteGraph.pointerevents_method}move`;
        if (!moving || !active?.finefaceLegacyDrag) return process.apply(this, arguments);
        this.dirty_canvas = true;
        if (!event.deltaX || onArrow(pos[0] - node.pos[0], active.width || node.size[0])) return active;
        const old = active.value;
        active.value = dragged(active, event.deltaX);
        active.callback?.(active.value, this, node, pos, event);
        if (active.value !== old) {
            node.onWidgetChanged?.(active.name, active.value, old, active);
            node.graph._version++;
        }
        return active;
    };
}

app.registerExtension({
    name: "FineFace.AUDrag",
    setup() {
        wrapLegacyCanvas();
    },
    beforeRegisterNodeDef(nodeType, nodeData) {
        const mine = AU_INPUTS[nodeData.name];
        if (!mine || nodeType.prototype.finefaceAUDrag) return;
        nodeType.prototype.finefaceAUDrag = true;
        const created = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const result = created?.apply(this, arguments);
            for (const w of this.widgets ?? []) {
                if (w.type !== "number" || !mine(w.name)) continue;
                if (typeof w.onDrag === "function") slowDrag(w);
                else w.finefaceLegacyDrag = true;
            }
            return result;
        };
    },
});
