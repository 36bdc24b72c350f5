// Default widths at which a node's input names and values show whole, on the canvas and as Vue nodes (whose
// widgets keep a label column and a value column side by side). Saved workflows keep their own sizes.
import { app } from "../../scripts/app.js";

const WIDTHS = { FineFaceReleaseLoader: 420 };

app.registerExtension({
    name: "FineFace.NodeWidths",
    beforeRegisterNodeDef(nodeType, nodeData) {
        const width = WIDTHS[nodeData.name];
        if (!width || nodeType.prototype.finefaceWidth) return;
        nodeType.prototype.finefaceWidth = width;
        const created = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const result = created?.apply(this, arguments);
            this.setSize([Math.max(this.size[0], width), this.size[1]]);
            return result;
        };
    },
});
