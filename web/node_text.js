// What the pack's nodes say after a run, shown on them: AU From Image's AUs read and faces found, Face Crop's
// faces found, AU Keyframes' frame labels (the node's "ui" text, nodes/shown_text.py), and the AUs read passed
// on to every AU Vector whose base the node's "aus" output feeds, so that its face shows what will be rendered.
import { app } from "../../scripts/app.js";
import { captionLines, FONT, LINE } from "./face_draw.js";
import { holdRoom } from "./own_canvas.js";
import { ownWidget } from "./own_widget.js";

const NODES = {
    FineFaceAUFromImage: "After a run: the AUs read and the faces found.",
    FineFaceFaceCrop: "After a run: the faces found.",
    FineFaceAUKeyframes: "After a run: each frame's AUs.",
};
const SHOWN_LINES = 6; // fixed: the node keeps its size after a run, and the saved layouts stay clear
const AU_VECTOR = "FineFaceAUVector";

export const textWidget = (node) => node.widgets?.find((w) => w.name === "fineface_text");

function redraw(node) {
    node.setDirtyCanvas(true, true);
    textWidget(node)?.triggerDraw?.();
}

function makeTextWidget(node) {
    const widget = ownWidget("fineface_text", {
        text: null, // the lines of the last run, as the node sent them
        shown: [], // the lines drawn, for the tests
        computeSize(width) {
            return [width, SHOWN_LINES * LINE + 10];
        },
        draw(ctx, node, width, y) {
            const height = SHOWN_LINES * LINE + 10;
            holdRoom(ctx, app.canvas?.canvas, height);
            let lines = widget.text ? widget.text.flatMap((t) => captionLines(ctx, t, width - 20)) : [NODES[node.type]];
            if (lines.length > SHOWN_LINES) {
                const more = lines.length - SHOWN_LINES + 1;
                lines = [...lines.slice(0, SHOWN_LINES - 1), `... and ${more} more line${more > 1 ? "s" : ""} (the label output has them all)`];
            }
            widget.shown = lines;
            ctx.save();
            ctx.fillStyle = "#1b1d22";
            ctx.fillRect(10, y, width - 20, height - 4);
            ctx.font = FONT;
            ctx.textAlign = "left";
            ctx.fillStyle = widget.text ? "#d8dbe0" : "#8a8f98";
            lines.forEach((line, i) => ctx.fillText(line, 16, y + 14 + i * LINE, width - 32));
            ctx.restore();
        },
    });
    return widget;
}

// The AU Vector nodes whose base input this node's "aus" output feeds, with the link that does it.
function fedBases(node) {
    const out = node.outputs?.find((o) => o.name === "aus");
    const fed = [];
    for (const id of out?.links ?? []) {
        const link = node.graph?.links?.[id] ?? node.graph?.links?.get?.(id);
        const target = link && node.graph.getNodeById(link.target_id);
        if (target?.type === AU_VECTOR && target.inputs?.[link.target_slot]?.name === "base") fed.push([target, id]);
    }
    return fed;
}

app.registerExtension({
    name: "FineFace.NodeText",
    beforeRegisterNodeDef(nodeType, nodeData) {
        if (!NODES[nodeData.name] || nodeType.prototype.finefaceText) return;
        nodeType.prototype.finefaceText = true;
        const created = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const result = created?.apply(this, arguments);
            this.addCustomWidget(makeTextWidget(this));
            const need = this.computeSize();
            this.setSize([Math.max(this.size[0], need[0]), Math.max(this.size[1], need[1])]);
            return result;
        };
        const executed = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (message) {
            const r = executed?.apply(this, arguments);
            const widget = textWidget(this);
            if (widget && Array.isArray(message?.fineface_text)) {
                widget.text = message.fineface_text.map(String);
                redraw(this);
            }
            if (Array.isArray(message?.fineface_aus)) {
                // au_face.js reads it while the same link still feeds the base
                for (const [target, link] of fedBases(this)) {
                    target.finefaceBase = { link, rows: message.fineface_aus, from: this.title };
                    target.setDirtyCanvas(true, true);
                    target.widgets?.find((w) => w.name === "fineface_face")?.triggerDraw?.();
                }
            }
            return r;
        };
    },
});
