// Default widths at which a node's input names and values show whole, on the canvas and as Vue nodes (whose
// widgets keep a label column and a value column side by side). Saved workflows keep their own sizes.
import { app } from "../../scripts/app.js";

const WIDTHS = { FineFaceModelLoader: 380, FineFaceReleaseLoader: 460, FineFaceAUFromImage: 360, FineFaceInvertPhoto: 320 };

function widen(node, width) {
    if (node.size[0] < width) node.setSize([width, node.size[1]]);
}

app.registerExtension({
    name: "FineFace.NodeWidths",
    beforeRegisterNodeDef(nodeType, nodeData) {
        const width = WIDTHS[nodeData.name];
        if (!width || nodeType.prototype.finefaceWidth) return;
        nodeType.prototype.finefaceWidth = width;
        const created = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const result = created?.apply(this, arguments);
            widen(this, width);
            return result;
        };
        // The 2024 front end's addWidget sets the node to its computed size, width too: a widget another
        // extension adds after this one's onNodeCreated undoes the width. A new node is added to the graph once
        // all its widgets are there; a pasted one is configured first, and keeps its size.
        const configure = nodeType.prototype.onConfigure;
        nodeType.prototype.onConfigure = function () {
            this.finefaceConfigured = true;
            return configure?.apply(this, arguments);
        };
        const added = nodeType.prototype.onAdded;
        nodeType.prototype.onAdded = function () {
            const result = added?.apply(this, arguments);
            if (!this.finefaceConfigured) widen(this, width);
            return result;
        };
    },
});
