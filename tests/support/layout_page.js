// Page-side helpers for tests/test_web_workflow_layout.py: the node boxes of the loaded graph, as the front end
// lays them out, and what the page shows at points of the screen.
window.ffLayout = {
    // Every node's box in page pixels: its element's where nodes are Vue components, else the canvas's
    // bounding box (title included) through the view's offset and scale.
    boxes() {
        const ds = app.canvas.ds, page = app.canvas.canvas.getBoundingClientRect();
        const k = page.width / app.canvas.canvas.width * (window.devicePixelRatio || 1);
        return app.graph._nodes.map((node) => {
            const el = document.querySelector(`[data-node-id='${node.id}']`);
            let box;
            if (el) {
                const r = el.getBoundingClientRect();
                box = [r.left, r.top, r.width, r.height];
            } else {
                const b = new Float32Array(4);
                node.getBounding ? node.getBounding(b) : b.set(node.boundingRect ?? [node.pos[0], node.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, node.size[0], node.size[1] + LiteGraph.NODE_TITLE_HEIGHT]);
                box = [page.left + (b[0] + ds.offset[0]) * ds.scale * k, page.top + (b[1] + ds.offset[1]) * ds.scale * k,
                       b[2] * ds.scale * k, b[3] * ds.scale * k];
            }
            return { id: node.id, title: node.title, type: node.type, box };
        });
    },
    // For each point [x, y] (page pixels): whether the page shows the node there (the graph's canvas, a widget
    // of the node's own, or the node's element), not a bar, a menu or another node.
    visible(id, points) {
        const node = app.graph.getNodeById(id);
        const el = document.querySelector(`[data-node-id='${id}']`);
        const shows = (hit) => (el ? el.contains(hit)
            : hit === app.canvas.canvas || !!node.widgets?.some((w) => w.element?.contains(hit) || w.inputEl?.contains(hit)));
        // true, or what is there instead
        return points.map(([x, y]) => {
            const hit = document.elementFromPoint(x, y);
            return !!hit && shows(hit) || (hit ? `${hit.tagName}.${hit.className}`.slice(0, 80) : "nothing");
        });
    },
    // Draw now; the AU Vector faces' answers are in when every face's caption is for its current state.
    settled() {
        app.canvas.setDirty(true, true);
        app.canvas.draw(true, true);
        for (const node of app.graph._nodes) {
            const face = node.widgets?.find((w) => w.name === "fineface_face");
            face?.triggerDraw?.();
            if (face && face.fineface.answeredKey !== face.fineface.key) return false;
        }
        return true;
    },
};
return true;
